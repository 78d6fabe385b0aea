//! Jute, ZooKeeper's record encoding, as its files hold it: big-endian
//! integers, length-prefixed buffers and strings (a length of -1 is null),
//! counted vectors. [`Jute`] reads a stream of it, keeping the offset of
//! every field (errors name it), an optional Adler-32 of the bytes read (the
//! snapshot's checksum) and an optional copy of them (a compressed snapshot
//! is unpacked into an anonymous file so that its records can be read again
//! by offset).

use std::io::{Read, Write};

/// Where a read went wrong, and why.
#[derive(Debug)]
pub(crate) struct JuteError {
    pub offset: u64,
    pub reason: String,
}

impl JuteError {
    pub(crate) fn at(offset: u64, reason: impl Into<String>) -> JuteError {
        JuteError {
            offset,
            reason: reason.into(),
        }
    }
}

pub(crate) type JuteResult<T> = std::result::Result<T, JuteError>;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes, one under 1 MiB.
pub(crate) const DEFAULT_MAXBUFFER: usize = 0xfffff;
/// Most entries believed in one vector (ACLs, multi operations, paths).
const MAX_ITEMS: usize = 1 << 24;
/// Bytes summed at once.
const SUM_BLOCK: usize = 64 << 10;

/// How long a field (and a logged record) may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The server's `jute.maxbuffer`.
    pub maxbuffer: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            maxbuffer: DEFAULT_MAXBUFFER,
        }
    }
}

impl Limits {
    /// The longest length the server itself reads back from its files:
    /// `BinaryInputArchive` allows `jute.maxbuffer` plus an extra allowance
    /// (`zookeeper.jute.maxbuffer.extrasize`, by default as much again, and
    /// never under 1024). Anything longer no server wrote.
    pub(crate) fn max_field(self) -> usize {
        self.maxbuffer.saturating_add(self.maxbuffer.max(1024))
    }
}

pub(crate) struct Jute<R> {
    inner: R,
    offset: u64,
    sum: Option<adler2::Adler32>,
    /// Bytes read but not yet summed: Adler-32 pays a modulo per call, so
    /// fields of a few bytes are summed a block at a time.
    unsummed: Vec<u8>,
    copy: Option<Box<dyn Write>>,
    scratch: Vec<u8>,
    limits: Limits,
    /// The offset past the last byte there can be, when known: counts
    /// are believed only as far as the bytes left can hold their entries.
    end: Option<u64>,
}

impl<R: Read> Jute<R> {
    /// Reads `inner`, whose first byte is at `offset`.
    pub(crate) fn new(inner: R, offset: u64) -> Jute<R> {
        Jute {
            inner,
            offset,
            sum: None,
            unsummed: Vec::new(),
            copy: None,
            scratch: Vec::new(),
            limits: Limits::default(),
            end: None,
        }
    }

    /// Holds fields to `limits`.
    pub(crate) fn with_limits(mut self, limits: Limits) -> Jute<R> {
        self.limits = limits;
        self
    }

    /// No byte is at or past `end`.
    pub(crate) fn with_end(mut self, end: u64) -> Jute<R> {
        self.end = Some(end);
        self
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Keeps an Adler-32 of every byte read from here on.
    pub(crate) fn with_checksum(mut self) -> Jute<R> {
        self.sum = Some(adler2::Adler32::new());
        self.unsummed = Vec::with_capacity(SUM_BLOCK);
        self
    }

    /// Writes every byte read from here on to `to` as well.
    pub(crate) fn with_copy(mut self, to: Box<dyn Write>) -> Jute<R> {
        self.copy = Some(to);
        self
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The running Adler-32 of the bytes read so far.
    pub(crate) fn sum_state(&self) -> adler2::Adler32 {
        let mut sum = self.sum.unwrap_or_default();
        sum.write_slice(&self.unsummed);
        sum
    }

    /// Flushes the copy, if any.
    pub(crate) fn finish_copy(&mut self) -> std::io::Result<()> {
        match &mut self.copy {
            Some(c) => c.flush(),
            None => Ok(()),
        }
    }

    /// Fills `buf` entirely, or says where the stream ended.
    fn fill(&mut self, buf: &mut [u8]) -> JuteResult<()> {
        let start = self.offset;
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(JuteError {
                        offset: start,
                        reason: format!(
                            "the file ends {} byte{} into a {}-byte field",
                            got,
                            if got == 1 { "" } else { "s" },
                            buf.len()
                        ),
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(JuteError::at(start + got as u64, e.to_string())),
            }
        }
        if let Some(s) = &mut self.sum {
            if self.unsummed.len() + buf.len() > SUM_BLOCK {
                s.write_slice(&self.unsummed);
                self.unsummed.clear();
            }
            if buf.len() > SUM_BLOCK {
                s.write_slice(buf);
            } else {
                self.unsummed.extend_from_slice(buf);
            }
        }
        if let Some(c) = &mut self.copy {
            c.write_all(buf)
                .map_err(|e| JuteError::at(start, format!("unpacking to a temporary file: {e}")))?;
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// True if the stream has no byte left (the next read would be cut).
    pub(crate) fn at_end(&mut self) -> JuteResult<bool>
    where
        R: std::io::BufRead,
    {
        self.inner
            .fill_buf()
            .map(|b| b.is_empty())
            .map_err(|e| JuteError::at(self.offset, e.to_string()))
    }

    /// Fills `buf` with the next bytes.
    pub(crate) fn read_into(&mut self, buf: &mut [u8]) -> JuteResult<()> {
        self.fill(buf)
    }

    /// Reads to the end; true if every byte left was zero.
    pub(crate) fn rest_is_zero(&mut self) -> bool
    where
        R: std::io::BufRead,
    {
        loop {
            let n = match self.inner.fill_buf() {
                Ok([]) => return true,
                Ok(b) if b.iter().all(|x| *x == 0) => b.len(),
                _ => return false,
            };
            self.inner.consume(n);
            self.offset += n as u64;
        }
    }

    pub(crate) fn u8(&mut self) -> JuteResult<u8> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    pub(crate) fn bool(&mut self) -> JuteResult<bool> {
        Ok(self.u8()? != 0)
    }

    pub(crate) fn i32(&mut self) -> JuteResult<i32> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(i32::from_be_bytes(b))
    }

    pub(crate) fn i64(&mut self) -> JuteResult<i64> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(i64::from_be_bytes(b))
    }

    /// A field's length prefix: -1 (null) as `None`.
    fn field_len(&mut self, what: &str) -> JuteResult<Option<usize>> {
        let at = self.offset;
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(JuteError::at(at, format!("{what} length {n}"))),
            n => {
                let n = n as usize;
                check_field(at, what, n, self.limits)?;
                self.check_room(at, what, n, 1)?;
                Ok(Some(n))
            }
        }
    }

    /// Refuses `n` entries of at least `each` bytes when the bytes left
    /// cannot hold them.
    pub(crate) fn check_room(&self, at: u64, what: &str, n: usize, each: u64) -> JuteResult<()> {
        let Some(end) = self.end else {
            return Ok(());
        };
        let left = end.saturating_sub(self.offset);
        if (n as u64).saturating_mul(each) > left {
            return Err(JuteError::at(
                at,
                format!("{what} of {n} claims more than the {left} bytes left can hold"),
            ));
        }
        Ok(())
    }

    /// A buffer; null reads as empty, as ZooKeeper treats it.
    pub(crate) fn buffer(&mut self) -> JuteResult<Vec<u8>> {
        let n = self.field_len("buffer")?.unwrap_or(0);
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// A buffer's length, its bytes read past (checksummed and copied).
    pub(crate) fn skip_buffer(&mut self) -> JuteResult<usize> {
        let n = self.field_len("buffer")?.unwrap_or(0);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut left = n;
        while left > 0 {
            let step = left.min(64 << 10);
            scratch.resize(step, 0);
            let r = self.fill(&mut scratch[..step]);
            if r.is_err() {
                self.scratch = scratch;
                return r.map(|_| 0);
            }
            left -= step;
        }
        self.scratch = scratch;
        Ok(n)
    }

    /// A string; null reads as `None`.
    pub(crate) fn ustring(&mut self) -> JuteResult<Option<String>> {
        let mut s = String::new();
        Ok(self.ustring_into(&mut s)?.then_some(s))
    }

    /// A string into `out`, whose room is reused; false for null.
    pub(crate) fn ustring_into(&mut self, out: &mut String) -> JuteResult<bool> {
        let Some(n) = self.field_len("string")? else {
            return Ok(false);
        };
        let mut v = std::mem::take(out).into_bytes();
        v.clear();
        v.resize(n, 0);
        let read = self.fill(&mut v);
        // Java writes CESU-8 for characters past the BMP and reads bad
        // sequences as U+FFFD: what a client of the server would see.
        *out = match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        read.map(|_| true)
    }

    /// A vector's count, each entry at least `each` bytes; null reads as 0.
    pub(crate) fn count(&mut self, what: &str, each: u64) -> JuteResult<usize> {
        let at = self.offset;
        let n = match self.i32()? {
            -1 => return Ok(0),
            n if n < 0 => return Err(JuteError::at(at, format!("{what} count {n}"))),
            n if n as usize > MAX_ITEMS => {
                return Err(JuteError::at(
                    at,
                    format!("{what} count {n} is past any ZooKeeper limit"),
                ))
            }
            n => n as usize,
        };
        self.check_room(at, &format!("a {what} list"), n, each)?;
        Ok(n)
    }
}

/// Refuses a length past what `limits` let a server write.
pub(crate) fn check_field(at: u64, what: &str, n: usize, limits: Limits) -> JuteResult<()> {
    let max = limits.max_field();
    if n > max {
        return Err(JuteError::at(
            at,
            format!(
                "{what} length {n} is past the {max} bytes a server with jute.maxbuffer {} reads back (if the server's jute.maxbuffer is raised, set jute.maxbuffer in the zoo.cfg given, or {})",
                limits.maxbuffer,
                crate::datadir::JUTE_MAXBUFFER_ENV
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adler(bytes: &[u8]) -> u32 {
        let mut a = adler2::Adler32::new();
        a.write_slice(bytes);
        a.checksum()
    }

    #[test]
    fn the_checksum_covers_every_byte_read_however_the_fields_fall() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut j = Jute::new(&bytes[..], 0).with_checksum();
        let mut read = 0;
        for (i, size) in [1usize, 70_000, 3, 65_536, 12].iter().cycle().enumerate() {
            if read + size > bytes.len() {
                break;
            }
            let mut field = vec![0u8; *size];
            j.read_into(&mut field).expect("bytes left");
            read += size;
            if i % 3 == 0 {
                assert_eq!(
                    j.sum_state().checksum(),
                    adler(&bytes[..read]),
                    "after {read}"
                );
            }
        }
        assert!(read > 200_000);
        assert_eq!(j.sum_state().checksum(), adler(&bytes[..read]));
    }
}
