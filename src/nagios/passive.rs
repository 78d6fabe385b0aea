//! Passive service results through Nagios's external command file (Icinga 2's
//! command pipe takes the same lines):
//!
//! `[<epoch>] PROCESS_SERVICE_CHECK_RESULT;<host>;<service>;<code>;<output>`
//!
//! Nagios skips exactly one space after `]`, splits fields on `;` up to the
//! output, and takes the output to the end of the line, unescaping `\n` and
//! `\\`. The file is usually a FIFO: it is opened non-blocking, because a
//! blocking open waits for a reader forever when Nagios is stopped, and
//! written with a single `write` of at most `PIPE_BUF` bytes, so lines from
//! concurrent writers never interleave.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::output::CheckResult;

/// The most a FIFO takes atomically (POSIX: at least 512; 4096 on Linux).
pub(crate) const PIPE_BUF: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PassiveError {
    /// A FIFO with no reader: Nagios is not running.
    #[error("no process reads the command file {} (is Nagios running?)", path.display())]
    NoReader { path: PathBuf },
    /// The FIFO is full: Nagios is not keeping up.
    #[error("the command file {} is full (Nagios is not reading it); result dropped", path.display())]
    Full { path: PathBuf },
    #[error("writing the command file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Nagios's escapes for output that spans lines.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The command line for `result`, newline-terminated and at most
/// [`PIPE_BUF`] bytes: long output lines are dropped from the end until it
/// fits (the status line and its perfdata stay whole where they can).
pub(crate) fn command_line(epoch: u64, host: &str, service: &str, result: &CheckResult) -> String {
    let head = format!(
        "[{epoch}] PROCESS_SERVICE_CHECK_RESULT;{host};{service};{};",
        result.state.exit_code()
    );
    let mut r = result.clone();
    loop {
        let output = escape(r.render().trim_end_matches('\n'));
        let line = format!("{head}{output}\n");
        if line.len() <= PIPE_BUF {
            return line;
        }
        if r.long_output.pop().is_none() {
            // Only the status line is left and it is still too long: cut it
            // at a character boundary (never inside an escape).
            let mut cut = PIPE_BUF - 1;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            let mut line = line[..cut].to_string();
            let trailing = line.len() - line.trim_end_matches('\\').len();
            if trailing % 2 == 1 {
                line.pop();
            }
            line.push('\n');
            return line;
        }
    }
}

/// Writes one command line to the command file without ever blocking.
pub(crate) fn submit(path: &Path, line: &str) -> Result<(), PassiveError> {
    let mut f = OpenOptions::new()
        // Appending: a regular file (a spool, or a test) keeps every line.
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => PassiveError::NoReader {
                path: path.to_path_buf(),
            },
            _ => PassiveError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    match f.write(line.as_bytes()) {
        Ok(n) if n == line.len() => Ok(()),
        Ok(n) => Err(PassiveError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("only {n} of {} bytes written", line.len()),
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(PassiveError::Full {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(PassiveError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nagios::output::{Perf, State};

    fn result(long: Vec<String>) -> CheckResult {
        CheckResult {
            check: "PARITY",
            state: State::Critical,
            summary: "1 confirmed difference (data 1)".into(),
            perfdata: vec![Perf::count("differences", 1)],
            long_output: long,
        }
    }

    #[test]
    fn the_line_has_nagios_shape_with_long_output_escaped() {
        let line = command_line(
            1700000000,
            "zk-migration",
            "zkparity kafka",
            &result(vec!["data /a\\b".into(), "acl /c".into()]),
        );
        assert_eq!(
            line,
            "[1700000000] PROCESS_SERVICE_CHECK_RESULT;zk-migration;zkparity kafka;2;\
             ZKPARITY PARITY CRITICAL - 1 confirmed difference (data 1) | differences=1;;;0\
             \\ndata /a\\\\b\\nacl /c\n"
        );
    }

    #[test]
    fn a_long_result_is_cut_to_one_atomic_pipe_write_keeping_the_status_line() {
        let long: Vec<String> = (0..500).map(|i| format!("data /node/{i:04}")).collect();
        let line = command_line(1, "h", "s", &result(long));
        assert!(line.len() <= PIPE_BUF);
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains("| differences=1;;;0\\ndata /node/0000"));
    }

    #[test]
    fn without_a_reader_a_fifo_is_skipped_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("nagios.cmd");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = submit(&fifo, "x\n").unwrap_err();
        assert!(matches!(e, PassiveError::NoReader { .. }), "{e}");
    }

    #[test]
    fn a_fifo_with_a_reader_gets_the_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("nagios.cmd");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A non-blocking reader, as Nagios holds it open.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        submit(&fifo, "[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;OK\n").unwrap();
        let mut got = String::new();
        use std::io::Read;
        (&reader).read_to_string(&mut got).unwrap();
        assert_eq!(got, "[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;OK\n");
    }

    #[test]
    fn a_missing_command_file_is_an_error_naming_it() {
        let e = submit(Path::new("/nonexistent/nagios.cmd"), "x\n").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/nagios.cmd"), "{e}");
    }
}
