//! Writing a command's answer to stdout.

use zkparity::error::Error;

/// Writes the answer. A reader that went away (`| head`) is not an error:
/// the verdict is still the exit code.
pub fn emit(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "writing the report to stdout".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}
