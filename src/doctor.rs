//! `backstage doctor`: what is wrong on this server, and the fix.

use std::process::ExitCode;

use backstage_nginx::NginxBinary;

use crate::ManifestArg;
use crate::manager;
use crate::production::{fail, load};

/// Arguments of `backstage doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Print one JSON document on stdout instead of text: `{"ok": bool, "findings": [{"check",
    /// "ok", "detail", "fix"}]}`
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &DoctorArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let diagnosis = match manager::doctor(&production, &NginxBinary::from_env()) {
        Ok(d) => d,
        Err(e) => return fail(&e, args.json),
    };
    if args.json {
        outln!("{}", serde_json::to_string(&diagnosis).expect("serializes"));
    } else {
        for f in &diagnosis.findings {
            outln!(
                "{} {:<14} {}",
                if f.ok { "ok " } else { "BAD" },
                f.check,
                f.detail
            );
            if let Some(fix) = &f.fix {
                outln!("    {:<14} fix: {fix}", "");
            }
        }
        let bad = diagnosis.findings.iter().filter(|f| !f.ok).count();
        if bad == 0 {
            outln!("\nthis server can run the Production");
        } else {
            outln!(
                "\n{bad} problem{} on this server; the `fix:` lines say how to mend each",
                if bad == 1 { "" } else { "s" }
            );
        }
    }
    if diagnosis.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
