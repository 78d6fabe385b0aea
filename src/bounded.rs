//! Input files read whole: JAAS configurations, digest credentials and the
//! agent's config. Each is a few lines; a much larger one is the wrong path
//! (a log, a device, an archive) and is refused before it is read, so a
//! slip costs neither memory nor a hang.

use std::io::Read;
use std::path::Path;

/// The most an input file may hold.
pub(crate) const MAX_INPUT_FILE: u64 = 1024 * 1024;

fn too_large(what: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{what}, more than the 1 MiB an input file may hold: is it the right file?"),
    )
}

/// `path` as UTF-8 text of at most [`MAX_INPUT_FILE`] bytes. A regular
/// file's size is judged before anything is read; the read itself stops one
/// byte past the bound all the same, since a pipe or a device has no size
/// and a file may grow meanwhile.
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > MAX_INPUT_FILE {
        return Err(too_large(format!("it is {} bytes", meta.len())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(too_large("it holds more".into()));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not UTF-8 text".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_bound_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; MAX_INPUT_FILE as usize + 1]).unwrap();
        let e = read_text(&path).unwrap_err().to_string();
        assert!(e.contains("1048577 bytes") && e.contains("1 MiB"), "{e}");
        std::fs::write(&path, vec![b'a'; MAX_INPUT_FILE as usize]).unwrap();
        assert_eq!(read_text(&path).unwrap().len(), MAX_INPUT_FILE as usize);
    }

    #[test]
    fn an_endless_device_is_cut_at_the_bound() {
        let e = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("holds more"), "{e}");
    }
}
