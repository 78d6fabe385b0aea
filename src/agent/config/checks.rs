//! What the keys name outside the file, checked before the agent starts:
//! the state directory, Nagios's command pipe, the Prometheus listen
//! address.

use std::net::SocketAddr;
use std::path::Path;

/// Nagios's external command file is a FIFO that exists while Nagios runs:
/// absent is fine (results are skipped until it is back), but anything else
/// in its place, or no directory for it, is a mistake that would lose every
/// result.
pub(super) fn check_command_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_fifo() => Ok(()),
        Ok(m) if m.is_dir() => Err(format!(
            "{} is a directory, not Nagios's command pipe (command_file in nagios.cfg)",
            path.display()
        )),
        Ok(_) => Err(format!(
            "{} is not a FIFO: results written there would never reach Nagios (its \
             command_file in nagios.cfg is a named pipe Nagios creates)",
            path.display()
        )),
        Err(_) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
                "{} cannot exist: its directory {} does not",
                path.display(),
                dir.display()
            )),
            _ => Ok(()),
        },
    }
}

/// `HOST:PORT` for `[prometheus] listen`: an address, or a name resolved
/// now (its first address), so a typo is a configuration error.
pub(super) fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<SocketAddr>() {
        if a.port() == 0 {
            return Err(format!(
                "{text:?} has port 0: give the port Prometheus scrapes"
            ));
        }
        return Ok(a);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "{text:?} is not HOST:PORT (e.g. \"127.0.0.1:9149\")"
        ));
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{port:?} in {text:?} is not a port number"));
    }
    use std::net::ToSocketAddrs;
    match text.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(format!("{host:?} has no address")),
        Err(e) => Err(format!("{host:?} does not resolve: {e}")),
    }
}

pub(super) fn check_writable_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains NUL", dir.display()))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(format!(
            "{} is not writable by this user: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
