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

/// Longest buffer or string believed: ZooKeeper refuses requests over its
/// `jute.maxbuffer` (1 MiB by default; operators raise it to tens of MiB),
/// so a length past this is a damaged file, not a value.
pub(crate) const MAX_FIELD: usize = 512 << 20;
/// Most entries believed in one vector (ACLs, multi operations, paths).
const MAX_ITEMS: usize = 1 << 24;

pub(crate) struct Jute<R> {
    inner: R,
    offset: u64,
    sum: Option<adler2::Adler32>,
    copy: Option<Box<dyn Write>>,
    scratch: Vec<u8>,
}

impl<R: Read> Jute<R> {
    /// Reads `inner`, whose first byte is at `offset`.
    pub(crate) fn new(inner: R, offset: u64) -> Jute<R> {
        Jute {
            inner,
            offset,
            sum: None,
            copy: None,
            scratch: Vec::new(),
        }
    }

    /// Keeps an Adler-32 of every byte read from here on.
    pub(crate) fn with_checksum(mut self) -> Jute<R> {
        self.sum = Some(adler2::Adler32::new());
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
        self.sum.unwrap_or_default()
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
            s.write_slice(buf);
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

    /// A length prefix: -1 (null) as `None`.
    fn len(&mut self, what: &str, max: usize) -> JuteResult<Option<usize>> {
        let at = self.offset;
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(JuteError::at(at, format!("{what} length {n}"))),
            n if n as usize > max => Err(JuteError::at(
                at,
                format!("{what} length {n} is past any ZooKeeper limit"),
            )),
            n => Ok(Some(n as usize)),
        }
    }

    /// A buffer; null reads as empty, as ZooKeeper treats it.
    pub(crate) fn buffer(&mut self) -> JuteResult<Vec<u8>> {
        let n = self.len("buffer", MAX_FIELD)?.unwrap_or(0);
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// A buffer's length, its bytes read past (checksummed and copied).
    pub(crate) fn skip_buffer(&mut self) -> JuteResult<usize> {
        let n = self.len("buffer", MAX_FIELD)?.unwrap_or(0);
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
        let at = self.offset;
        let Some(n) = self.len("string", MAX_FIELD)? else {
            return Ok(None);
        };
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        // Java writes CESU-8 for characters past the BMP and reads bad
        // sequences as U+FFFD: what a client of the server would see.
        let _ = at;
        Ok(Some(match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// A vector's count; null reads as 0.
    pub(crate) fn count(&mut self, what: &str) -> JuteResult<usize> {
        Ok(self.len(what, MAX_ITEMS)?.unwrap_or(0))
    }
}
