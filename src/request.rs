//! `backstage request`: speak the uwsgi protocol straight to a Sess.
use std::{
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use backstage_uwsgi::{Client, Request, Response, Target};
use clap::Args;

/// Send one HTTP request over uwsgi and print the response body, byte for byte.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// A Sess name from the manifest, its unix socket path (with a `/`), or `host:port`.
    target: String,
    /// The request path, with an optional `?query`.
    path: String,
    /// The method (default `GET`, or `POST` with a body).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A header, `'Name: value'`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "K: V")]
    headers: Vec<String>,
    /// A body given inline (sent as a form unless a `Content-Type` is given).
    #[arg(
        short = 'd',
        long = "data",
        value_name = "DATA",
        conflicts_with = "data_binary"
    )]
    data: Option<String>,
    /// A body sent byte for byte: `@FILE` (streamed), `@-` (stdin) or inline text.
    #[arg(long = "data-binary", value_name = "@FILE")]
    data_binary: Option<String>,
    /// Also print the status line and headers before the body.
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// The manifest, when TARGET is a Sess name [default: `backstage.toml` here or in the nearest parent]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Seconds the whole exchange may take: connecting (a full listen queue is tried again
    /// until then), sending, and reading the response to the end of its body
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

/// Runs the command: 0 when a response came back, 1 on failure, 2 on bad usage.
pub fn run(args: RequestArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    runtime.block_on(request(args))
}

/// Resolves a Sess name through the manifest.
fn sess_target(args: &RequestArgs) -> Result<(Target, String), ExitCode> {
    let arg = crate::ManifestArg {
        file: args.file.clone(),
    };
    let manifest = crate::check::read_manifest(&arg).map_err(|failure| failure.code)?;
    let production = manifest.load().map_err(|e| {
        errln!("error: {e}; run `backstage check` for the details");
        ExitCode::FAILURE
    })?;
    crate::manager::sess_target(&production, &args.target).ok_or_else(|| {
        let names: Vec<&str> = production.sess.keys().map(backstage_core::values::Slug::as_str).collect();
        errln!(
            "error: no Sess `{}` in production `{}` (its Sess: {}); a TARGET with `/` is a socket path, with `:` an address",
            args.target,
            production.name,
            names.join(", ")
        );
        ExitCode::FAILURE
    })
}

enum Body {
    Inline(Vec<u8>),
    File(PathBuf),
}

async fn request(args: RequestArgs) -> ExitCode {
    let mut headers = Vec::new();
    let is_sess_name = !args.target.contains(['/', ':'])
        && args.target.parse::<backstage_core::values::Slug>().is_ok();
    let target: Target = if is_sess_name {
        match sess_target(&args) {
            Ok((target, host)) => {
                // The Act's ALLOWED_HOSTS accept its Venue's names; send one unless told otherwise.
                if !args
                    .headers
                    .iter()
                    .any(|h| h.to_ascii_lowercase().starts_with("host:"))
                {
                    headers.push(("Host".to_owned(), host));
                }
                target
            }
            Err(code) => return code,
        }
    } else {
        match args.target.parse() {
            Ok(target) => target,
            Err(error) => return usage(&error.to_string()),
        }
    };
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            return usage(&format!("header `{header}` is not `Name: value`"));
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return usage(&format!("header `{header}` has an invalid name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let body = match (&args.data, &args.data_binary) {
        (Some(data), _) => {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push((
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
            }
            Some(Body::Inline(data.clone().into_bytes()))
        }
        (None, Some(spec)) => match spec.strip_prefix('@') {
            Some("-") => {
                let mut stdin = Vec::new();
                if let Err(error) = io::Read::read_to_end(&mut io::stdin(), &mut stdin) {
                    return fail(&error);
                }
                Some(Body::Inline(stdin))
            }
            Some(path) => Some(Body::File(PathBuf::from(path))),
            None => Some(Body::Inline(spec.clone().into_bytes())),
        },
        (None, None) => None,
    };
    let method = args
        .method
        .clone()
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned());
    let mut request = Request::new(method, args.path.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request = match body {
        None => request,
        Some(Body::Inline(bytes)) => request.body(bytes),
        Some(Body::File(path)) => {
            let file = match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(error) => {
                    return fail_with(&format!("cannot read `{}`", path.display()), &error);
                }
            };
            let length = match file.metadata().await {
                Ok(meta) => meta.len(),
                Err(error) => {
                    return fail_with(&format!("cannot read `{}`", path.display()), &error);
                }
            };
            request.body_stream(file, length)
        }
    };
    let timeout = Duration::from_secs(args.timeout);
    let client = Client::new(target)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .deadline(timeout);
    match client.send(request).await {
        Ok(response) => print_response(response, args.include).await,
        Err(error) => fail(&error),
    }
}

async fn print_response(response: Response, include: bool) -> ExitCode {
    let (head, mut body) = response.into_parts();
    let mut stdout = io::stdout().lock();
    if include {
        let mut text = format!("{} {} {}\r\n", head.version, head.status, head.reason).into_bytes();
        for (name, value) in &head.headers {
            text.extend_from_slice(name.as_bytes());
            text.extend_from_slice(b": ");
            text.extend_from_slice(value);
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"\r\n");
        if let Err(error) = stdout.write_all(&text) {
            return write_failed(&error);
        }
    }
    loop {
        match body.chunk().await {
            // Each chunk as it comes: a slow body shows as it arrives, and what came before a
            // failure is out.
            Ok(Some(chunk)) => {
                if let Err(error) = stdout.write_all(&chunk).and_then(|()| stdout.flush()) {
                    return write_failed(&error);
                }
            }
            Ok(None) => break,
            Err(error) => return fail(&error),
        }
    }
    match stdout.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => write_failed(&error),
    }
}

/// Stdout failed: a closed pipe (`| head -c 100`) means the reader has all it wants, as for
/// `cat`; anything else is a failure.
fn write_failed(error: &io::Error) -> ExitCode {
    if error.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        fail(error)
    }
}

/// Prints an error and the chain of its causes on one line.
fn fail(error: &dyn std::error::Error) -> ExitCode {
    errln!("backstage request: {}", backstage_core::error_chain(error));
    ExitCode::FAILURE
}

fn fail_with(context: &str, error: &io::Error) -> ExitCode {
    errln!("backstage request: {context}: {error}");
    ExitCode::FAILURE
}

fn usage(message: &str) -> ExitCode {
    errln!("backstage request: {message}");
    ExitCode::from(2)
}
