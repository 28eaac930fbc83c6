//! `backstage check`: validate the manifest, report every problem.

use std::io::IsTerminal;
use std::process::ExitCode;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
pub(crate) use backstage_core::error_chain;
use backstage_core::{Manifest, Problem};

use crate::ManifestArg;

/// Arguments of `backstage check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Print one JSON document: `{"ok": bool, "errors": [{"path", "line", "column", "message", "hint"}]}`
    #[arg(long)]
    json: bool,
}

/// Why the manifest could not be read: the exit code, the message, and where in the file
/// (line, column) when that is known.
pub(crate) struct ReadFailure {
    pub(crate) code: ExitCode,
    pub(crate) message: String,
    pub(crate) position: Option<(usize, usize)>,
}

/// Reads the manifest named by `-f` or found by discovery; reports a failure on stderr.
pub(crate) fn read_manifest(arg: &ManifestArg) -> Result<Manifest, ReadFailure> {
    let result = match &arg.file {
        Some(path) => Manifest::read(path),
        None => std::env::current_dir()
            .map_err(|source| backstage_core::Error::Read {
                path: ".".into(),
                source,
            })
            .and_then(|dir| Manifest::discover(&dir)),
    };
    result.map_err(|e| {
        let message = error_chain(&e);
        errln!("error: {message}");
        if matches!(e, backstage_core::Error::ManifestNotFound { .. }) {
            errln!(
                "hint: name one with `-f FILE`, or run from the directory holding `backstage.toml`"
            );
        }
        let position = match e {
            backstage_core::Error::NotUtf8 { line, column, .. } => Some((line, column)),
            _ => None,
        };
        ReadFailure {
            code: ExitCode::FAILURE,
            message,
            position,
        }
    })
}

pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let manifest = match read_manifest(&args.manifest) {
        Ok(m) => m,
        Err(ReadFailure {
            code,
            message,
            position,
        }) => {
            if args.json {
                // Scripts still get a document; it names the failure like any other problem.
                let (line, column) = position.unwrap_or((0, 0));
                let error = serde_json::json!({"path": "", "line": line, "column": column, "message": message, "hint": null});
                outln!("{}", serde_json::json!({"ok": false, "errors": [error]}));
            }
            return code;
        }
    };
    // One parse: the foreign-site check reads the Production it built.
    let problems = match manifest.parse() {
        Ok(production) => foreign_problems(&manifest, &production),
        Err(problems) => problems,
    };
    if args.json {
        let doc = serde_json::json!({"ok": problems.is_empty(), "errors": problems});
        outln!("{doc}");
    } else if problems.is_empty() {
        outln!("{}: ok", manifest.path().display());
    } else {
        let renderer = if std::io::stderr().is_terminal() {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        errln!("{}", render_problems(&manifest, &problems, &renderer));
        errln!(
            "error: {} problem{} in `{}`; nothing was written",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            manifest.path().display()
        );
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Compiler-style reports: `file:line:col`, the snippet, the reason, a hint where one helps.
pub(crate) fn render_problems(
    manifest: &Manifest,
    problems: &[Problem],
    renderer: &Renderer,
) -> String {
    let path = manifest.path().display().to_string();
    let mut out = String::new();
    for p in problems {
        let title = if p.path.is_empty() {
            p.message.clone()
        } else {
            format!("{}: {}", p.path, p.message)
        };
        let mut span = p.span.clone();
        if span.is_empty() && span.end < manifest.source().len() {
            span.end = manifest.source()[span.start..]
                .char_indices()
                .nth(1)
                .map_or(span.start, |(i, _)| span.start + i);
        }
        let snippet = Snippet::source(manifest.source())
            .path(path.as_str())
            .annotation(AnnotationKind::Primary.span(span));
        let mut group =
            Group::with_title(Level::ERROR.primary_title(title.as_str())).element(snippet);
        if let Some(hint) = &p.hint {
            group = group.element(Level::HELP.message(hint.as_str()));
        }
        out.push_str(&renderer.render(&[group]));
        out.push('\n');
    }
    out
}

/// System mode: server names that sites of this server, not Backstage's, already serve (what
/// `apply` would refuse), as problems at the name in the manifest.
fn foreign_problems(manifest: &Manifest, production: &backstage_core::Production) -> Vec<Problem> {
    if production.mode != backstage_core::Mode::System {
        return Vec::new();
    }
    let source = manifest.source();
    match backstage_nginx::foreign_clashes(production) {
        Ok(clashes) => clashes
            .into_iter()
            .map(|c| {
                // The name as written in the manifest (its first quoted occurrence).
                let quoted = format!("\"{}\"", c.name);
                let span = source
                    .find(&quoted)
                    .map_or(0..0, |at| at..at + quoted.len());
                Problem::new(
                    source,
                    format!("venues.{}.server_names[{}]", c.venue, c.index),
                    span,
                    format!(
                        "server name `{}` is already served by `{}`, a site Backstage does not manage",
                        c.name,
                        c.file.display()
                    ),
                    Some("pick another name, or remove it from that site".to_owned()),
                )
            })
            .collect(),
        Err(e) => vec![Problem::new(
            source,
            String::new(),
            0..0,
            format!("cannot read the server's enabled sites: {e}"),
            None,
        )],
    }
}
