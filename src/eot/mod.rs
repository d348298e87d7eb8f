//! End of turn: whether the candidate has finished speaking (the acoustic model and its features).

pub mod mel;
pub mod smart_turn;
