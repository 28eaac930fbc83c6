//! `backstage graph`: a picture of the Production, as SVG or DOT.

use std::process::ExitCode;

use crate::ManifestArg;
use crate::manager::graph;
use crate::production::{fail, load};

/// What `graph` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// An SVG picture, drawn by Graphviz's `dot` (`apt-get install graphviz`)
    Svg,
    /// The graph in Graphviz's DOT language, for `dot`, `xdot` or any other Graphviz tool
    Dot,
}

/// Arguments of `backstage graph`.
#[derive(Debug, clap::Args)]
pub(crate) struct GraphArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// What to print on stdout
    #[arg(long, value_enum, default_value = "svg")]
    format: Format,
}

pub(crate) fn run(args: &GraphArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let dot = graph::to_dot(&production);
    match args.format {
        Format::Dot => {
            outln!("{}", dot.trim_end());
            ExitCode::SUCCESS
        }
        Format::Svg => match graph::to_svg(&dot) {
            Ok(svg) => {
                outln!("{}", svg.trim_end());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e, false),
        },
    }
}
