//! Command-line arguments, LiteLLM style: `tollgate --config FILE [--host H] [--port P]`.

pub const USAGE: &str = "usage: tollgate [--config FILE] [--host HOST] [--port PORT]

  --config FILE   LiteLLM config.yaml (else $TOLLGATE_CONFIG, else $TOLLGATE_CONFIG_YAML)
  --host HOST     address to listen on (default 127.0.0.1)
  --port PORT     port to listen on (default 4000, or $PORT)

Inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set) host and port are ignored.";

#[derive(Debug, PartialEq)]
pub struct Args {
    pub config: Option<String>,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Args),
    Help,
}

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
        let default_port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(4000);
        let mut parsed = Args {
            config: None,
            host: "127.0.0.1".into(),
            port: default_port,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--config" | "-c" => parsed.config = Some(value("--config")?),
                "--host" => parsed.host = value("--host")?,
                "--port" | "-p" => {
                    let v = value("--port")?;
                    parsed.port = v
                        .parse()
                        .map_err(|_| format!("--port: {v:?} is not a port number"))?;
                }
                "--help" | "-h" => return Ok(Command::Help),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Command::Run(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_in_both_forms() {
        let Command::Run(a) =
            parse(&["--config", "c.yaml", "--port=8080", "--host", "0.0.0.0"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(a.config.as_deref(), Some("c.yaml"));
        assert_eq!(a.port, 8080);
        assert_eq!(a.host, "0.0.0.0");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse(&["--port", "http"])
            .unwrap_err()
            .contains("not a port"));
        assert!(parse(&["--config"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--wat"]).is_err());
        assert_eq!(parse(&["-h"]).unwrap(), Command::Help);
    }
}
