//! A picture of the Production: Venues → Gigs → Sess → Stages, and the Act each Sess plays,
//! as Graphviz DOT (written here) and SVG (drawn by Graphviz's `dot`).
//!
//! The layout runs left to right, one column per kind, so it reads the same at 3 Sess as at
//! 300: a column grows taller, never tangled. Parallel edges are merged (`concentrate`), and a
//! Gig's edges carry the weights of its Sess when it balances over more than one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use backstage_core::Production;

use crate::ManagerError;

/// The DOT text of the Production's graph.
pub fn to_dot(production: &Production) -> String {
    let mut dot = String::new();
    let title = format!("Production {}", production.name);
    let _ = writeln!(dot, "digraph {} {{", quote(production.name.as_str()));
    let _ = writeln!(
        dot,
        "  graph [rankdir=LR, concentrate=true, nodesep=0.15, ranksep=0.9, fontname=\"Helvetica\", \
         fontsize=16, labelloc=t, label={}];",
        quote(&title)
    );
    dot.push_str(
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11, \
         color=\"#555555\"];\n  edge [color=\"#777777\", fontname=\"Helvetica\", fontsize=9];\n",
    );

    // A column per kind: its nodes share a rank, in manifest (name) order.
    column(
        &mut dot,
        "Venues",
        production.venues.iter().map(|(name, venue)| {
            let closed = !production.gigs.values().any(|g| g.venue == *name);
            let names: Vec<String> = venue
                .server_names
                .iter()
                .map(|n| escape(n.as_str()))
                .collect();
            let mut label = format!("Venue {}\\n{}", escape(name.as_str()), names.join("\\n"));
            if closed {
                label.push_str("\\nclosed: 503");
            }
            let style = if closed {
                "fillcolor=\"#eeeeee\", style=\"rounded,filled,dashed\", fontcolor=\"#777777\""
            } else {
                "fillcolor=\"#fde9c8\""
            };
            (id("venue", name.as_str()), label, style)
        }),
    );
    column(
        &mut dot,
        "Gigs",
        production.gigs.iter().map(|(name, gig)| {
            let label = format!(
                "Gig {}\\n{}",
                escape(name.as_str()),
                escape(gig.path.as_str())
            );
            (id("gig", name.as_str()), label, "fillcolor=\"#d6ecfa\"")
        }),
    );
    column(
        &mut dot,
        "Sess",
        production.sess.iter().map(|(name, sess)| {
            let plural =
                |n: u16, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "es" });
            let label = format!(
                "Sess {}\\n{}, {}",
                escape(name.as_str()),
                plural(sess.processes, "process"),
                if sess.threads == 1 {
                    "1 thread".to_owned()
                } else {
                    format!("{} threads", sess.threads)
                }
            );
            (id("sess", name.as_str()), label, "fillcolor=\"#d9f2d9\"")
        }),
    );
    column(
        &mut dot,
        "Stages and Acts",
        production
            .stages
            .keys()
            .map(|name| {
                (
                    id("stage", name.as_str()),
                    format!("Stage {}", escape(name.as_str())),
                    "fillcolor=\"#ece0f5\"",
                )
            })
            .chain(production.acts.keys().map(|name| {
                (
                    id("act", name.as_str()),
                    format!("Act {}", escape(name.as_str())),
                    "shape=note, style=filled, fillcolor=\"#fff8c4\"",
                )
            })),
    );

    for (name, gig) in &production.gigs {
        let _ = writeln!(
            dot,
            "  {} -> {};",
            id("venue", gig.venue.as_str()),
            id("gig", name.as_str())
        );
        let total: u32 = gig.sess.iter().map(|(_, w)| u32::from(*w)).sum();
        for (sess, weight) in &gig.sess {
            let label = if gig.sess.len() > 1 {
                format!(
                    " [label=\"weight {weight} ({}%)\"]",
                    u32::from(*weight) * 100 / total.max(1)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                dot,
                "  {} -> {}{label};",
                id("gig", name.as_str()),
                id("sess", sess.as_str())
            );
        }
    }
    for (name, sess) in &production.sess {
        let from = id("sess", name.as_str());
        let _ = writeln!(dot, "  {from} -> {};", id("stage", sess.stage.as_str()));
        let _ = writeln!(
            dot,
            "  {from} -> {} [style=dashed, arrowhead=none, color=\"#b0a040\"];",
            id("act", sess.act.as_str())
        );
    }
    dot.push_str("}\n");
    dot
}

/// One rank of nodes: `(id, label already escaped, attributes)`.
fn column<'a>(
    dot: &mut String,
    kind: &str,
    nodes: impl Iterator<Item = (String, String, &'a str)>,
) {
    let _ = writeln!(dot, "  // {kind}\n  {{\n    rank=same;");
    for (id, label, attrs) in nodes {
        let _ = writeln!(dot, "    {id} [label=\"{label}\", {attrs}];");
    }
    dot.push_str("  }\n");
}

/// A node id: `"kind:name"`, so names of different kinds never collide.
fn id(kind: &str, name: &str) -> String {
    quote(&format!("{kind}:{name}"))
}

/// A DOT double-quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// The inside of a DOT double-quoted string: `"` and `\` escaped (a `\` would start a DOT
/// escape such as `\n` or `\N`), line breaks as DOT's `\n`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Draws `dot` (DOT text) as SVG with Graphviz's `dot -Tsvg` (the `dot` on `PATH`).
pub fn to_svg(dot: &str) -> Result<String, ManagerError> {
    let io = |action| move |source| ManagerError::Graphviz { action, source };
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ManagerError::NoGraphviz,
            _ => ManagerError::Graphviz {
                action: "run",
                source,
            },
        })?;
    // Written from a thread: `dot` may fill its stdout pipe before it has read all its input.
    let input = dot.to_owned();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(io("wait for"))?;
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")));
    if !output.status.success() {
        return Err(ManagerError::GraphvizFailed {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    written.map_err(io("write the graph to"))?;
    String::from_utf8(output.stdout)
        .map_err(|e| io("read the SVG of")(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_dot_strings() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(id("sess", "club-a"), "\"sess:club-a\"");
    }
}
