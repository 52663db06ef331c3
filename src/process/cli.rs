//! Command line. Hand-written: five forms do not justify an argument-parsing crate.

use std::path::PathBuf;

use crate::auth::Role;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `camera-service [--config PATH] [--strict-config]`
    Run {
        config: Option<PathBuf>,
        strict: bool,
    },
    /// `camera-service --check-config [--config PATH] [--strict-config]`
    CheckConfig {
        config: Option<PathBuf>,
        strict: bool,
    },
    /// `camera-service token --role ROLE [--user NAME] [--ttl SECONDS] [--config PATH]`
    Token {
        config: Option<PathBuf>,
        role: Role,
        user: String,
        /// Seconds; `None` = `security.jwt.expiry_hours` of the configuration.
        ttl: Option<u64>,
    },
    /// `camera-service api-key create --role ROLE [--name NAME] [--config PATH]`
    ApiKeyCreate {
        config: Option<PathBuf>,
        role: Role,
        name: String,
    },
    Version,
    Help,
}

pub const USAGE: &str = "\
usage: camera-service [--config PATH] [--strict-config]
       camera-service --check-config [--config PATH] [--strict-config]
       camera-service token --role viewer|operator|admin [--user NAME] [--ttl SECONDS] [--config PATH]
       camera-service api-key create --role viewer|operator|admin [--name NAME] [--config PATH]
       camera-service --version";

/// Parse the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut config = None;
    let mut strict = false;
    let mut check = false;
    let mut role = None;
    let mut user = None;
    let mut name = None;
    let mut ttl = None;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{what} needs a value"))
        };
        match flag {
            "--config" | "-c" => config = Some(PathBuf::from(value("--config")?)),
            "--strict-config" => strict = true,
            "--check-config" => check = true,
            "--role" => {
                let r = value("--role")?;
                role = Some(
                    Role::parse(&r).ok_or_else(|| format!("--role: expected viewer, operator or admin, got {r:?}"))?,
                );
            }
            "--user" => user = Some(value("--user")?),
            "--name" => name = Some(value("--name")?),
            "--ttl" => {
                let t = value("--ttl")?;
                ttl = Some(
                    t.parse::<u64>()
                        .ok()
                        .filter(|t| *t > 0)
                        .ok_or_else(|| format!("--ttl: expected seconds > 0, got {t:?}"))?,
                );
            }
            "--version" | "-V" => return Ok(Command::Version),
            "--help" | "-h" => return Ok(Command::Help),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            _ => positional.push(arg.clone()),
        }
    }
    let need_role = |role: Option<Role>| role.ok_or_else(|| "--role is required".to_string());
    match positional.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] if check => Ok(Command::CheckConfig { config, strict }),
        [] => Ok(Command::Run { config, strict }),
        ["token"] => {
            Ok(Command::Token { config, role: need_role(role)?, user: user.unwrap_or_else(|| "admin-cli".into()), ttl })
        }
        ["api-key", "create"] => {
            Ok(Command::ApiKeyCreate { config, role: need_role(role)?, name: name.unwrap_or_else(|| "CLI key".into()) })
        }
        other => Err(format!("unexpected arguments: {}", other.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn forms() {
        assert_eq!(p("").unwrap(), Command::Run { config: None, strict: false });
        assert_eq!(
            p("--check-config --config x.yaml").unwrap(),
            Command::CheckConfig { config: Some("x.yaml".into()), strict: false }
        );
        assert_eq!(
            p("token --role admin --ttl 60").unwrap(),
            Command::Token { config: None, role: Role::Admin, user: "admin-cli".into(), ttl: Some(60) }
        );
        assert!(matches!(p("api-key create --role viewer").unwrap(), Command::ApiKeyCreate { role: Role::Viewer, .. }));
        assert!(p("token").is_err());
        assert!(p("--bogus").is_err());
        assert_eq!(p("--version").unwrap(), Command::Version);
    }
}
