//! `TRAFFICGEN_*` variables read with the rules of their flags: clap reads no variable itself
//! (its rules differ: an empty value is not "unset", a switch takes only `true`/`false`, errors
//! name the flag); each valid value becomes its flag on the command line.

use clap::{CommandFactory as _, FromArgMatches as _};

use super::{Cli, Command, parse_bool};

/// Why the command line (or a `TRAFFICGEN_*` variable) was refused.
#[derive(Debug)]
pub enum CliError {
    /// clap's own error (usage, `--help`, `--version`): `exit()` prints it.
    Clap(clap::Error),
    /// Variables whose values are invalid, each message naming the variable (exit 2).
    Env(Vec<String>),
}

impl Cli {
    /// Parses the process's arguments and `TRAFFICGEN_*` variables (see `parse_from_env`).
    pub fn parse_process() -> Result<Cli, CliError> {
        Cli::parse_from_env(std::env::args_os(), &|name| std::env::var_os(name))
    }

    /// Parses `args` with the `TRAFFICGEN_*` variables that `env` returns. A variable accepts
    /// exactly what its flag accepts (switches also `1`/`0`/`true`/`false`/`yes`/`no`/`on`/
    /// `off`); a variable set to the empty string counts as unset; a flag given on the command
    /// line wins over its variable; an invalid value is an error that names the variable.
    ///
    /// clap reads no variable itself: each valid value becomes its flag, inserted after the
    /// subcommand, and the whole line is parsed once more.
    pub fn parse_from_env(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Cli, CliError> {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let original = Cli::command();
        let mut cmd = without_env(Cli::command());
        let matches = match cmd.try_get_matches_from_mut(args.clone()) {
            Ok(m) => m,
            // Help is rendered by the original command, which lists the variables.
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
                return Err(CliError::Clap(
                    original
                        .clone()
                        .try_get_matches_from(args)
                        .err()
                        .unwrap_or(e),
                ));
            }
            Err(e) => return Err(CliError::Clap(e)),
        };
        let mut extra = Vec::new();
        let mut problems = Vec::new();
        let mut from_env = Vec::new();
        if let Some((sub, sub_matches)) = matches.subcommand()
            && let Some(with_env) = original.find_subcommand(sub)
        {
            for arg in with_env.get_arguments() {
                let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else {
                    continue;
                };
                let id = arg.get_id().as_str();
                if sub_matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                    continue;
                }
                let name = var.to_string_lossy().into_owned();
                let Some(value) = env(&name).filter(|v| !v.is_empty()) else {
                    continue;
                };
                match env_flag(arg, long, &name, &value) {
                    Ok(Some(flag)) => {
                        extra.push(flag);
                        from_env.push((format!("--{long}"), name));
                    }
                    Ok(None) => {}
                    Err(m) => problems.push(m),
                }
            }
        }
        if !problems.is_empty() {
            return Err(CliError::Env(problems));
        }
        if extra.is_empty() {
            return Cli::from_arg_matches(&matches).map_err(CliError::Clap);
        }
        // Right after the subcommand (`trafficgen run ...`): before any `--` separator.
        let mut full = args;
        let at = 2.min(full.len());
        full.splice(at..at, extra);
        let matches = cmd.try_get_matches_from_mut(full).map_err(CliError::Clap)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(CliError::Clap)?;
        if let Command::Run(args) = &mut cli.command {
            args.from_env = from_env;
        }
        Ok(cli)
    }
}

/// The command with every `env` removed (clap would otherwise read the variables itself, with
/// its own rules for empty values and its errors naming the flag).
fn without_env(mut cmd: clap::Command) -> clap::Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in subs {
        cmd = cmd.mut_subcommand(sub, |mut s| {
            let ids: Vec<clap::Id> = s
                .get_arguments()
                .filter(|a| a.get_env().is_some())
                .map(|a| a.get_id().clone())
                .collect();
            for id in ids {
                s = s.mut_arg(id, |a| a.env(None));
            }
            s
        });
    }
    cmd
}

/// The flag that variable `name` = `value` stands for, or its problem (naming the variable).
fn env_flag(
    arg: &clap::Arg,
    long: &str,
    name: &str,
    value: &std::ffi::OsStr,
) -> Result<Option<std::ffi::OsString>, String> {
    // URL variables may carry credentials: their values are not repeated.
    let shown = if arg.is_hide_env_values_set() {
        "(hidden)".into()
    } else {
        value.to_string_lossy()
    };
    if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        return match parse_bool(&shown) {
            Ok(true) => Ok(Some(format!("--{long}").into())),
            Ok(false) => Ok(None),
            Err(_) => Err(format!(
                "{name}={shown}: expected a switch value: 1, 0, true, false, yes, no, on or off"
            )),
        };
    }
    // The flag's own value parser, alone in a one-option command (no requirements between
    // flags apply to a variable).
    let probe = clap::Command::new("variable").no_binary_name(true).arg(
        clap::Arg::new("value")
            .long("value")
            .action(clap::ArgAction::Set)
            .value_parser(arg.get_value_parser().clone()),
    );
    let mut probe_arg = std::ffi::OsString::from("--value=");
    probe_arg.push(value);
    match probe.try_get_matches_from([probe_arg]) {
        Ok(_) => {
            let mut flag = std::ffi::OsString::from(format!("--{long}="));
            flag.push(value);
            Ok(Some(flag))
        }
        Err(e) => {
            let why = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            Err(format!("{name}={shown}: {why}"))
        }
    }
}
