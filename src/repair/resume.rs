//! The plan file, and with `--resume FILE` the journal of how far applying
//! got, so that a repair that was killed continues where it stopped.
//!
//! JSON lines: a header (what is being repaired: a plan is only resumed
//! against the same source, target, path, excludes and `--delete-extra`),
//! one line per action in the order they are applied, a `plan_end` line
//! with the action count, the SHA-256 of the action lines and the plan's
//! summary, then `progress` lines appended as applying goes on. A progress
//! line says "the first `done` actions are settled" and is fsynced before
//! anything after them is sent, so at most the actions in flight at the
//! moment of a kill are sent again; every action is written so that sending
//! it twice changes nothing (see `apply`).
//!
//! The plan holds node data and digest ACL ids in clear: the file is
//! created mode 600.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plan::{Action, PlanSink, PlanSummary};
use crate::durable;
use crate::error::{Error, Result};

pub(crate) const FORMAT: &str = "zkparity-repair-plan";
pub(crate) const VERSION: u32 = 1;

/// What a plan repairs; a resume file is only used for the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub source: String,
    pub target: String,
    pub path: String,
    pub excludes: Vec<String>,
    pub delete_extra: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    identity: Identity,
    created_unix: u64,
    zkparity: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanEnd {
    actions: u64,
    sha256: String,
    summary: PlanSummary,
}

/// What applying did, over every run of one plan (carried from run to run
/// in the checkpoints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyCounts {
    /// Actions this repair carried out.
    pub applied: u64,
    /// Actions found already done (by an earlier, interrupted run, or by
    /// someone else).
    pub already_done: u64,
    /// Actions not carried out because the target changed since planning.
    pub conflicts: u64,
    /// Actions the target refused (e.g. not authorised).
    pub failed: u64,
    /// Write operations sent, retries and counter top-up pairs included.
    pub writes: u64,
}

/// How far applying got: a checkpoint in the resume file's `progress` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The first `done` actions are settled (applied, found done, or
    /// reported as a conflict or failure).
    pub done: u64,
    pub counts: ApplyCounts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Header(Header),
    Action(Action),
    PlanEnd(PlanEnd),
    Progress(Checkpoint),
}

fn io_err(file: &Path, what: &str) -> impl Fn(std::io::Error) -> Error {
    let context = format!("{what} {}", file.display());
    move |e| Error::Io {
        context: context.clone(),
        source: e,
    }
}

fn line_of(record: &Record) -> Vec<u8> {
    // Plain data types: serialising them cannot fail.
    let mut line = serde_json::to_vec(record).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Writes a plan as it is found.
pub struct PlanWriter {
    out: BufWriter<File>,
    /// `None` for an anonymous temporary file (an apply without --resume).
    path: Option<PathBuf>,
    shown: PathBuf,
    actions_offset: u64,
    actions: u64,
    sha: Sha256,
}

impl PlanWriter {
    /// Starts a plan in `path`, replacing whatever is there, mode 600.
    pub fn create(path: &Path, identity: &Identity) -> Result<PlanWriter> {
        let file = durable::create_in_place(path, durable::PRIVATE)
            .map_err(io_err(path, "creating the resume file"))?;
        PlanWriter::start(file, Some(path.to_path_buf()), path, identity)
    }

    /// Starts a plan in an anonymous temporary file: the plan stays out of
    /// memory even when nothing is to be resumed.
    pub(crate) fn temporary(identity: &Identity) -> Result<PlanWriter> {
        let file = tempfile::tempfile().map_err(|e| Error::Io {
            context: "creating a temporary plan file".into(),
            source: e,
        })?;
        PlanWriter::start(file, None, Path::new("(temporary plan file)"), identity)
    }

    fn start(
        file: File,
        path: Option<PathBuf>,
        shown: &Path,
        identity: &Identity,
    ) -> Result<PlanWriter> {
        let header = Record::Header(Header {
            format: FORMAT.into(),
            version: VERSION,
            identity: identity.clone(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            zkparity: env!("CARGO_PKG_VERSION").into(),
        });
        let line = line_of(&header);
        let mut out = BufWriter::new(file);
        out.write_all(&line)
            .map_err(io_err(shown, "writing the plan to"))?;
        Ok(PlanWriter {
            out,
            path,
            shown: shown.to_path_buf(),
            actions_offset: line.len() as u64,
            actions: 0,
            sha: Sha256::new(),
        })
    }

    /// Ends the plan and makes it durable; returns it ready to apply.
    pub fn finish(mut self, summary: &PlanSummary) -> Result<PlanFile> {
        let end = Record::PlanEnd(PlanEnd {
            actions: self.actions,
            sha256: hex::encode(self.sha.clone().finalize()),
            summary: summary.clone(),
        });
        let shown = self.shown.clone();
        let err = io_err(&shown, "writing the plan to");
        self.out.write_all(&line_of(&end)).map_err(&err)?;
        self.out.flush().map_err(&err)?;
        let file = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        match &self.path {
            // The plan is complete on disk, under its name, before anything
            // of it is applied.
            Some(path) => durable::sync_in_place(&file, path).map_err(&err)?,
            None => file.sync_all().map_err(&err)?,
        }
        Ok(PlanFile {
            file,
            path: self.path,
            shown,
            actions_offset: self.actions_offset,
            total: self.actions,
            summary: summary.clone(),
            progress: Checkpoint::default(),
        })
    }
}

impl PlanSink for PlanWriter {
    fn action(&mut self, action: &Action) -> Result<()> {
        let line = line_of(&Record::Action(action.clone()));
        self.sha.update(&line);
        self.actions += 1;
        self.out
            .write_all(&line)
            .map_err(io_err(&self.shown, "writing the plan to"))
    }
}

/// A finished plan on disk.
pub struct PlanFile {
    file: File,
    path: Option<PathBuf>,
    shown: PathBuf,
    actions_offset: u64,
    pub total: u64,
    pub summary: PlanSummary,
    /// Where a previous run stopped (all zeros for a new plan).
    pub progress: Checkpoint,
}

/// What `--resume FILE` found.
pub(crate) enum Opened {
    /// Nothing to resume; the reason is worth telling when a file was there.
    Fresh(Option<String>),
    Resume(Box<PlanFile>),
}

fn bad_line(path: &Path, line: u64, reason: String) -> Error {
    Error::BadFile {
        file: path.to_path_buf(),
        line,
        reason,
    }
}

/// What reading a resume file line by line has found so far.
#[derive(Default)]
struct Scan {
    actions_offset: Option<u64>,
    actions: u64,
    sha: Sha256,
    end: Option<PlanEnd>,
    progress: Checkpoint,
}

impl Scan {
    /// Takes one whole line: the header first, the actions, the plan's end
    /// with their checksum, then progress records.
    fn take(
        &mut self,
        path: &Path,
        identity: &Identity,
        line_no: u64,
        offset: u64,
        line: &[u8],
        record: Record,
    ) -> Result<()> {
        let bad = |line: u64, reason: String| bad_line(path, line, reason);
        match (line_no, record) {
            (1, Record::Header(h)) => {
                if h.format != FORMAT || h.version != VERSION {
                    return Err(bad(1, format!("not a {FORMAT} v{VERSION} file")));
                }
                if h.identity != *identity {
                    return Err(Error::Usage(format!(
                        "{} holds a repair of {} from {} (path {}, excludes {:?}, delete extra {}), \
                         not this one: finish that repair, or remove the file or pass another --resume",
                        path.display(),
                        h.identity.target,
                        h.identity.source,
                        h.identity.path,
                        h.identity.excludes,
                        h.identity.delete_extra
                    )));
                }
            }
            (1, _) => return Err(bad(1, "no header: not a repair plan".into())),
            (_, Record::Header(_)) => return Err(bad(line_no, "a second header".into())),
            (_, Record::Action(_)) if self.end.is_some() => {
                return Err(bad(line_no, "an action after the end of the plan".into()))
            }
            (_, Record::Action(_)) => {
                self.actions_offset.get_or_insert(offset);
                self.sha.update(line);
                self.actions += 1;
            }
            (_, Record::PlanEnd(e)) => {
                if e.actions != self.actions || e.sha256 != hex::encode(self.sha.clone().finalize())
                {
                    return Err(bad(
                        line_no,
                        "the plan's actions do not match its checksum: the file was edited or damaged"
                            .into(),
                    ));
                }
                self.actions_offset.get_or_insert(offset);
                self.end = Some(e);
            }
            (_, Record::Progress(_)) if self.end.is_none() => {
                return Err(bad(line_no, "progress before the end of the plan".into()))
            }
            (_, Record::Progress(p)) => self.progress = p,
        }
        Ok(())
    }
}

/// Opens a resume file. A file for another repair is refused; one whose
/// plan never finished, or whose repair did, is planned afresh.
pub(crate) fn open(path: &Path, identity: &Identity) -> Result<Opened> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Fresh(None)),
        Err(e) => return Err(io_err(path, "opening the resume file")(e)),
    };
    let bad = |line: u64, reason: String| bad_line(path, line, reason);
    let read_err = io_err(path, "reading the resume file");
    let max_line = crate::snapshot::max_line()?;
    let mut reader = BufReader::new(&file);
    let mut offset = 0u64;
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let mut scan = Scan::default();
    let mut good_end = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(&read_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if n > max_line {
            return Err(bad(
                line_no,
                format!(
                    "at byte {offset}: a line longer than {max_line} bytes, which no plan holds (a line is bounded by jute.maxbuffer; if the ensemble's is raised, set {})",
                    crate::datadir::JUTE_MAXBUFFER_ENV
                ),
            ));
        }
        let complete = buf.ends_with(b"\n");
        let record = if complete {
            serde_json::from_slice::<Record>(&buf).ok()
        } else {
            None
        };
        let Some(record) = record else {
            // A kill can leave a torn last line; anywhere else it is damage.
            // Whether anything follows, without reading it into memory.
            let rest_is_empty = reader.fill_buf().map_err(&read_err)?.is_empty();
            if rest_is_empty && line_no > 1 {
                break;
            }
            return Err(bad(line_no, "not a repair plan line".into()));
        };
        scan.take(path, identity, line_no, offset, &buf, record)?;
        offset += n as u64;
        good_end = offset;
    }
    let Scan {
        actions_offset,
        end,
        progress,
        ..
    } = scan;
    drop(reader);
    let Some(end) = end else {
        return Ok(Opened::Fresh(Some(format!(
            "the plan in {} was never finished (nothing of it was applied): planning again",
            path.display()
        ))));
    };
    if progress.done >= end.actions {
        return Ok(Opened::Fresh(Some(format!(
            "the repair in {} was finished: planning anew",
            path.display()
        ))));
    }
    // Drop a torn last line, so appended progress starts on a line of its own.
    file.set_len(good_end)
        .map_err(io_err(path, "repairing the resume file"))?;
    Ok(Opened::Resume(Box::new(PlanFile {
        file,
        path: Some(path.to_path_buf()),
        shown: path.to_path_buf(),
        actions_offset: actions_offset.unwrap_or(good_end),
        total: end.actions,
        summary: end.summary,
        progress,
    })))
}

impl PlanFile {
    pub(crate) fn shown(&self) -> &Path {
        &self.shown
    }

    /// The actions from `skip` on, read lazily.
    pub(crate) fn actions(&self, skip: u64) -> Result<ActionReader> {
        let mut file = match &self.path {
            Some(p) => File::open(p).map_err(io_err(p, "reading the plan in"))?,
            None => self
                .file
                .try_clone()
                .map_err(io_err(&self.shown, "reading the plan in"))?,
        };
        file.seek(SeekFrom::Start(self.actions_offset))
            .map_err(io_err(&self.shown, "reading the plan in"))?;
        let mut reader = ActionReader {
            lines: BufReader::new(file),
            shown: self.shown.clone(),
            remaining: self.total,
            buf: Vec::new(),
            max_line: crate::snapshot::max_line()? as u64,
        };
        for _ in 0..skip.min(self.total) {
            reader.next().transpose()?;
        }
        Ok(reader)
    }

    /// Where progress goes: appended to the resume file, or nowhere.
    pub(crate) fn journal(&self) -> Result<Journal> {
        let file = match &self.path {
            Some(p) => Some(
                OpenOptions::new()
                    .append(true)
                    .open(p)
                    .map_err(io_err(p, "opening the resume file"))?,
            ),
            None => None,
        };
        Ok(Journal {
            file,
            shown: self.shown.clone(),
        })
    }
}

pub(crate) struct ActionReader {
    lines: BufReader<File>,
    shown: PathBuf,
    remaining: u64,
    buf: Vec<u8>,
    /// The longest line read: the plan was checked, but may have changed.
    max_line: u64,
}

impl Iterator for ActionReader {
    type Item = Result<Action>;

    fn next(&mut self) -> Option<Result<Action>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.buf.clear();
        let read = (&mut self.lines)
            .take(self.max_line + 1)
            .read_until(b'\n', &mut self.buf);
        Some(match read {
            Err(e) => Err(io_err(&self.shown, "reading the plan in")(e)),
            Ok(_) => match serde_json::from_slice::<Record>(&self.buf) {
                Ok(Record::Action(a)) => Ok(a),
                _ => Err(Error::BadFile {
                    file: self.shown.clone(),
                    line: 0,
                    reason: "the plan changed while it was being applied".into(),
                }),
            },
        })
    }
}

/// Durable progress.
pub(crate) struct Journal {
    file: Option<File>,
    shown: PathBuf,
}

impl Journal {
    /// Records that the first `progress.done` actions are settled, and
    /// waits until that is on disk.
    pub(crate) fn record(&mut self, progress: &Checkpoint) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let err = io_err(&self.shown, "writing progress to");
        file.write_all(&line_of(&Record::Progress(*progress)))
            .map_err(&err)?;
        file.sync_data().map_err(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            source: "s:1".into(),
            target: "t:1".into(),
            path: "/".into(),
            excludes: vec!["/zookeeper".into()],
            delete_extra: false,
        }
    }

    fn plan(path: &Path, n: usize) -> PlanFile {
        let mut w = PlanWriter::create(path, &identity()).unwrap();
        for i in 0..n {
            w.action(&Action::Delete {
                path: format!("/n{i}"),
                version: 0,
            })
            .unwrap();
        }
        w.finish(&PlanSummary::default()).unwrap()
    }

    #[test]
    fn resumes_after_the_last_durable_progress_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan");
        let p = plan(&path, 5);
        let mut j = p.journal().unwrap();
        j.record(&Checkpoint {
            done: 3,
            counts: ApplyCounts::default(),
        })
        .unwrap();
        // A kill in the middle of the next progress line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"progress\":{\"do").unwrap();
        let Opened::Resume(p) = open(&path, &identity()).unwrap() else {
            panic!("expected a resume");
        };
        assert_eq!((p.progress.done, p.total), (3, 5));
        let rest: Vec<String> = p
            .actions(3)
            .unwrap()
            .map(|a| a.unwrap().path().to_string())
            .collect();
        assert_eq!(rest, ["/n3", "/n4"]);
        // The torn line is gone; new progress parses.
        p.journal()
            .unwrap()
            .record(&Checkpoint {
                done: 5,
                counts: ApplyCounts::default(),
            })
            .unwrap();
        assert!(matches!(
            open(&path, &identity()).unwrap(),
            Opened::Fresh(Some(_))
        ));
    }

    #[test]
    fn another_repairs_file_is_refused_and_an_edited_plan_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan");
        plan(&path, 2);
        let other = Identity {
            delete_extra: true,
            ..identity()
        };
        assert!(matches!(open(&path, &other), Err(Error::Usage(_))));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("/n1", "/nX")).unwrap();
        assert!(matches!(
            open(&path, &identity()),
            Err(Error::BadFile { .. })
        ));
    }

    #[test]
    fn an_unfinished_plan_is_planned_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan");
        let mut w = PlanWriter::create(&path, &identity()).unwrap();
        w.action(&Action::Delete {
            path: "/a".into(),
            version: 0,
        })
        .unwrap();
        w.out.flush().unwrap();
        drop(w);
        assert!(matches!(
            open(&path, &identity()).unwrap(),
            Opened::Fresh(Some(_))
        ));
    }
}
