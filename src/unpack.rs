//! Bounds on unpacking a compressed file: no packed input, however
//! crafted, unpacks to more than its size can honestly hold, so a
//! decompression bomb is refused before it fills memory or the temporary
//! disk it is unpacked onto.

use std::io::Read;

/// Deflate's densest: 258 bytes from a 2-bit code is 1032 to 1.
pub(crate) const GZIP_RATIO: u64 = 1032;
/// Most bytes a packed file is unpacked to, whatever its size: more
/// than any ZooKeeper tree held in a server's memory.
pub(crate) const MAX_UNPACKED: u64 = 64 << 30;

/// The bytes a packed file of `packed` bytes can unpack to at most.
pub(crate) fn unpacked_cap(packed: u64, ratio: u64) -> u64 {
    packed.saturating_mul(ratio).min(MAX_UNPACKED)
}

/// A reader that fails once it has given `cap` bytes: a packed file that
/// unpacks past what its size allows is a bomb, not a snapshot.
pub(crate) struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R> Capped<R> {
    pub(crate) fn new(inner: R, cap: u64) -> Capped<R> {
        Capped {
            inner,
            left: cap,
            cap,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "unpacks to more than {} bytes, more than a file of its size can hold: not a snapshot",
                    self.cap
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
