//! `camera-service`: see `camera_service::process::cli::USAGE`.

use std::process::ExitCode;

use camera_service::auth::Authenticator;
use camera_service::config::{self, LoadOptions};
use camera_service::process::cli::{self, Command};
use camera_service::process::daemon::{self, EXIT_CONFIG, EXIT_FATAL};

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

fn authenticator(loaded: config::Loaded) -> Result<Authenticator, i32> {
    Authenticator::from_config(&loaded.config).map_err(|e| {
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
            Ok(loaded) => match loaded.config.to_redacted_yaml() {
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
            daemon::run(loaded)
        }
        Command::Token { config, role, user, ttl } => match load(config, false) {
            Ok(loaded) => {
                let ttl = ttl.unwrap_or(loaded.config.security.jwt.expiry_hours.max(1) * 3600);
                match authenticator(loaded) {
                    Ok(auth) => {
                        println!("{}", auth.issue(&user, role, ttl));
                        0
                    }
                    Err(code) => code,
                }
            }
            Err(code) => code,
        },
        Command::ApiKeyCreate { config, role, name } => match load(config, false).and_then(authenticator) {
            Ok(auth) => match auth.api_keys().create(role, &name) {
                Ok((key, record)) => {
                    println!("{key}");
                    eprintln!(
                        "API key {} ({role}) stored as a hash in {}; this is the only time the key is shown.",
                        record.key_id,
                        auth.api_keys().path().display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("cannot store the API key in {}: {e}", auth.api_keys().path().display());
                    EXIT_FATAL
                }
            },
            Err(code) => code,
        },
    }
}
