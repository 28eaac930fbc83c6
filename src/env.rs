//! `backstage env ACT set KEY=VALUE | unset KEY | list`: an Act's secrets.

use std::process::ExitCode;

use crate::ManifestArg;
use crate::manager;
use crate::production::{fail, load};

/// Arguments of `backstage env`.
#[derive(Debug, clap::Args)]
pub(crate) struct EnvArgs {
    /// The Act whose secrets these are
    #[arg(value_name = "ACT")]
    act: String,
    #[command(subcommand)]
    action: EnvAction,
    #[command(flatten)]
    manifest: ManifestArg,
}

#[derive(Debug, clap::Subcommand)]
enum EnvAction {
    /// Store a secret: `backstage env club set DJANGO_SECRET_KEY=...` (effective at the next
    /// `apply`, which replaces the Act's Sess blue/green).
    ///
    /// The value is kept in `<state_dir>/secrets/<act>.env` (mode 0600) and nowhere else but the
    /// private envdir each Sess reads at start; it is never printed. A value cannot end in
    /// whitespace (uWSGI would strip it) nor hold a NUL byte.
    Set {
        /// `KEY=VALUE`; with `-` as VALUE (`KEY=-`), the value is read from stdin (one line,
        /// its line break dropped), so it stays out of the shell's history and `ps`
        #[arg(value_name = "KEY=VALUE")]
        assignment: String,
    },
    /// Remove a secret from the store (effective at the next `apply`).
    Unset {
        /// The variable
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// List the Act's secret keys and where each comes from (`store` or `env_file`); values
    /// show as `<secret>`.
    List {
        /// Print one JSON document on stdout instead of text
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(args: &EnvArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match &args.action {
        EnvAction::Set { assignment } => {
            let Some((key, value)) = assignment.split_once('=') else {
                errln!("error: expected `KEY=VALUE`, got no `=`");
                return ExitCode::from(2);
            };
            let value = if value == "-" {
                let mut line = String::new();
                if let Err(e) = std::io::stdin().read_line(&mut line) {
                    errln!("error: could not read the value from stdin: {e}");
                    return ExitCode::FAILURE;
                }
                line.trim_end_matches(['\n', '\r']).to_owned()
            } else {
                value.to_owned()
            };
            match manager::env_set(&production, &args.act, key, &value) {
                Ok(()) => {
                    outln!(
                        "set `{key}` for Act `{}`; `backstage apply` gives it to its Sess",
                        args.act
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, false),
            }
        }
        EnvAction::Unset { key } => match manager::env_unset(&production, &args.act, key) {
            Ok(true) => {
                outln!(
                    "unset `{key}` for Act `{}`; `backstage apply` takes it from its Sess",
                    args.act
                );
                ExitCode::SUCCESS
            }
            Ok(false) => {
                errln!("error: Act `{}` has no stored secret `{key}`", args.act);
                ExitCode::FAILURE
            }
            Err(e) => fail(&e, false),
        },
        EnvAction::List { json } => match manager::env_list(&production, &args.act) {
            Ok(keys) => {
                if *json {
                    outln!("{}", serde_json::json!({ "secrets": keys }));
                } else if keys.is_empty() {
                    outln!(
                        "Act `{}` has no secrets: `backstage env {} set KEY=VALUE`, or `env_file` in its manifest",
                        args.act,
                        args.act
                    );
                } else {
                    let w = keys.iter().map(|k| k.key.len()).max().unwrap_or(0);
                    for k in &keys {
                        outln!("{:<w$}  <secret>  ({})", k.key, k.source);
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e, *json),
        },
    }
}
