//! Structured logs on stderr through `tracing`: one line per round and pair
//! at `info`, failures at `warn`, drift as it is confirmed or healed.
//!
//! The level comes from the configuration and follows it on reload;
//! `ZKPARITY_LOG` (tracing's filter syntax) overrides it, for debugging one
//! module without editing the file. Other crates log at `warn` and above.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use super::config::LogLevel;

pub(crate) const LOG_ENV: &str = "ZKPARITY_LOG";

fn filter(level: LogLevel) -> EnvFilter {
    EnvFilter::new(format!("warn,zkparity={}", level.as_str()))
}

/// Changes the level after a reload.
pub(crate) struct LogHandle {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    from_env: bool,
}

impl LogHandle {
    pub(crate) fn set_level(&self, level: LogLevel) {
        if self.from_env {
            return;
        }
        if let Some(h) = &self.handle {
            let _ = h.reload(filter(level));
        }
    }
}

/// Installs the subscriber for the process. Timestamps are fixed at start
/// (under systemd the journal stamps lines itself).
pub(crate) fn init(level: LogLevel, timestamps: bool) -> LogHandle {
    let (initial, from_env) = match std::env::var(LOG_ENV) {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, true),
            Err(e) => {
                eprintln!("zkparity: warning: {LOG_ENV}={spec:?} ignored: {e}");
                (filter(level), false)
            }
        },
        _ => (filter(level), false),
    };
    let (filter_layer, handle) = reload::Layer::new(initial);
    let base = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let output = if timestamps {
        base.boxed()
    } else {
        base.without_time().boxed()
    };
    let installed = tracing_subscriber::registry()
        .with(filter_layer)
        .with(output)
        .try_init()
        .is_ok();
    LogHandle {
        handle: installed.then_some(handle),
        from_env,
    }
}
