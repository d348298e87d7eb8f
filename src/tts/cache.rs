//! A bounded cache of synthesized sentences in front of a slow voice: an interviewer says
//! the same sentences again and again (the greeting, acknowledgements, every scripted
//! question), and a neural voice spends about 100 ms of CPU on each.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{Speech, Synthesizer, TtsError, Urgency};

/// A voice with a cache of the last sentences it spoke, up to a total of audio bytes.
pub struct CachedVoice {
    inner: Arc<dyn Synthesizer>,
    entries: Arc<Mutex<Entries>>,
}

/// Sentences by text, the oldest first in `order`.
struct Entries {
    speech: HashMap<String, Arc<Speech>>,
    order: VecDeque<String>,
    bytes: usize,
    limit: usize,
}

impl Entries {
    fn get(&mut self, text: &str) -> Option<Arc<Speech>> {
        let speech = self.speech.get(text)?.clone();
        // Most recently used last, so the least used is dropped first.
        if let Some(i) = self.order.iter().position(|t| t == text) {
            let key = self.order.remove(i).unwrap_or_default();
            self.order.push_back(key);
        }
        Some(speech)
    }

    fn insert(&mut self, text: String, speech: Arc<Speech>) {
        let size = speech.samples.len() * 2;
        if size > self.limit || self.speech.contains_key(&text) {
            return;
        }
        while self.bytes + size > self.limit {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.speech.remove(&oldest) {
                self.bytes -= old.samples.len() * 2;
            }
        }
        self.bytes += size;
        self.order.push_back(text.clone());
        self.speech.insert(text, speech);
    }
}

impl CachedVoice {
    /// `inner` with a cache of at most `limit_bytes` of audio.
    pub fn new(inner: Arc<dyn Synthesizer>, limit_bytes: usize) -> Self {
        Self {
            inner,
            entries: Arc::new(Mutex::new(Entries {
                speech: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                limit: limit_bytes,
            })),
        }
    }

    fn lock(entries: &Mutex<Entries>) -> std::sync::MutexGuard<'_, Entries> {
        entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Synthesizer for CachedVoice {
    fn synthesize(
        &self,
        text: String,
        cancel: CancellationToken,
        urgency: Urgency,
    ) -> BoxFuture<'static, Result<Speech, TtsError>> {
        let key = text.trim().to_owned();
        if let Some(speech) = Self::lock(&self.entries).get(&key) {
            return Box::pin(std::future::ready(Ok(Speech::clone(&speech))));
        }
        let (entries, job) = (
            self.entries.clone(),
            self.inner.synthesize(text, cancel, urgency),
        );
        Box::pin(async move {
            let speech = job.await?;
            Self::lock(&entries).insert(key, Arc::new(speech.clone()));
            Ok(speech)
        })
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn voice(&self) -> String {
        self.inner.voice()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its syntheses: one sample per byte of text.
    struct Counting(Arc<AtomicUsize>);

    impl Synthesizer for Counting {
        fn synthesize(
            &self,
            text: String,
            _cancel: CancellationToken,
            _urgency: Urgency,
        ) -> BoxFuture<'static, Result<Speech, TtsError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let samples = vec![1; text.len()];
            Box::pin(async move {
                if text.contains("fail") {
                    return Err(TtsError::Synthesis(-1));
                }
                Ok(Speech {
                    samples,
                    sample_rate: 16_000,
                })
            })
        }

        fn name(&self) -> &'static str {
            "counting"
        }

        fn voice(&self) -> String {
            "counting".into()
        }
    }

    async fn say(voice: &CachedVoice, text: &str) -> Result<usize, TtsError> {
        let speech = voice
            .synthesize(text.into(), CancellationToken::new(), Urgency::Now)
            .await?;
        Ok(speech.samples.len())
    }

    #[tokio::test]
    async fn repeats_come_from_the_cache_and_the_oldest_go_first() {
        let runs = Arc::new(AtomicUsize::new(0));
        // Room for 20 samples of 2 bytes.
        let voice = CachedVoice::new(Arc::new(Counting(runs.clone())), 40);
        assert_eq!(say(&voice, "aaaaaaaaaa").await, Ok(10));
        assert_eq!(
            say(&voice, " aaaaaaaaaa ").await,
            Ok(10),
            "same sentence, trimmed"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(say(&voice, "bbbbbbbbbb").await, Ok(10));
        // "a" was used last: "b" goes when "c" needs the room.
        assert_eq!(say(&voice, "aaaaaaaaaa").await, Ok(10));
        assert_eq!(say(&voice, "cccccccccc").await, Ok(10));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        say(&voice, "aaaaaaaaaa").await.expect("a");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a was kept");
        say(&voice, "bbbbbbbbbb").await.expect("b");
        assert_eq!(runs.load(Ordering::SeqCst), 4, "b was dropped");
        // Failures and sentences bigger than the whole cache are not kept.
        assert!(say(&voice, "fail").await.is_err());
        assert!(say(&voice, "fail").await.is_err());
        say(&voice, &"x".repeat(30)).await.expect("long");
        say(&voice, &"x".repeat(30)).await.expect("long");
        assert_eq!(runs.load(Ordering::SeqCst), 8);
    }
}
