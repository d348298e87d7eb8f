//! Language models: the `ChatModel` trait, scripted interviewer, OpenAI-compatible client.
