//! `camera-service`: see `camera_service::cli::USAGE`.

use std::process::ExitCode;

use camera_service::cli::{self, Command};
use camera_service::config::{self, LoadOptions};
use camera_service::daemon::{self, EXIT_CONFIG, EXIT_FATAL};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("camera-service: {e}\n{}", cli::USAGE);
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    ExitCode::from(run(command) as u8)
}

fn load(config: Option<std::path::PathBuf>, strict: bool) -> Result<config::Loaded, i32> {
    config::load(&LoadOptions { path: config, strict }).map_err(|e| {
        eprintln!("{e}");
        EXIT_CONFIG
    })
}

fn run(command: Command) -> i32 {
    match command {
        Command::Version => {
            println!("camera-service {} (commit {})", camera_service::VERSION, camera_service::GIT_COMMIT);
            0
        }
        Command::Help => {
            println!("{}", cli::USAGE);
            0
        }
        Command::CheckConfig { config, strict } => match load(config, strict) {
            Ok(loaded) => match serde_norway::to_string(&loaded.config) {
                Ok(yaml) => {
                    for w in &loaded.warnings {
                        eprintln!("WARNING: {w}");
                    }
                    print!("{yaml}");
                    0
                }
                Err(e) => {
                    eprintln!("cannot render configuration: {e}");
                    EXIT_FATAL
                }
            },
            Err(code) => code,
        },
        Command::Run { config, strict } => {
            let loaded = match load(config, strict) {
                Ok(l) => l,
                Err(code) => return code,
            };
            if let Err(e) = camera_service::logging::init(&loaded.config.logging) {
                eprintln!("logging: {e}");
                return EXIT_CONFIG;
            }
            match &loaded.source {
                Some(path) => log::info!("configuration loaded from {}", path.display()),
                None => log::info!("configuration: built-in defaults"),
            }
            for w in &loaded.warnings {
                log::warn!("{w}");
            }
            let code = daemon::run(loaded);
            camera_service::logging::flush();
            code
        }
        Command::Token { .. } | Command::ApiKeyCreate { .. } => {
            eprintln!("camera-service: this command arrives with the authentication module");
            EXIT_FATAL
        }
    }
}
