//! Small helpers shared by every component: atomic files, random ids, time formatting, credential redaction.

pub mod fs;
pub mod ids;
pub mod redact;
pub mod timefmt;
