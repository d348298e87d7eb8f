//! The callgate.v1 wire protocol: message types and the binary audio frame codec.
