//! Structured logs on stderr through `tracing`: one line per round and pair
//! at `info`, failures at `warn`, drift as it is confirmed or healed.
//!
//! The level comes from the configuration and follows it on reload;
//! `ZKPARITY_LOG` (tracing's filter syntax) overrides it, for debugging one
//! module without editing the file. Other crates log at `warn` and above,
//! save one warning that is no fault (see [`ExpectedRefusals`]).

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
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
        .with(ExpectedRefusals)
        .with(output)
        .try_init()
        .is_ok();
    LogHandle {
        handle: installed.then_some(handle),
        from_env,
    }
}

/// Leaves out the client library's warning that the target refused to
/// resume the same-ensemble check's session: that refusal is how the check
/// learns the two sides are different ensembles, so every healthy pair
/// provokes it, and an operator would read a fault into it.
struct ExpectedRefusals;

impl<S: Subscriber> Layer<S> for ExpectedRefusals {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        !is_expected_refusal(event)
    }
}

fn is_expected_refusal(event: &Event<'_>) -> bool {
    let meta = event.metadata();
    if *meta.level() != Level::WARN
        || !meta.target().starts_with("zookeeper_client")
        || !crate::identity::resuming_elsewhere()
    {
        return false;
    }
    let mut message = Message(String::new());
    event.record(&mut message);
    message.0.contains("establish session") && message.0.ends_with("due to session expired")
}

/// An event's message, as formatted.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}
