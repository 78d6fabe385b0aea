//! The JSON rendering: the report model as it is, schema in
//! `docs/json-report.md`.

use super::CompareReport;

pub fn render(report: &CompareReport) -> String {
    // The model holds only strings, numbers and maps with string keys, which
    // serde_json always serialises.
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}
