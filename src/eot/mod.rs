//! End of turn: deciding whether the candidate has finished speaking.

pub mod mel;
