//! Small helpers shared by every component: atomic files, random ids, time formatting.

pub mod fs;
pub mod ids;
pub mod timefmt;
