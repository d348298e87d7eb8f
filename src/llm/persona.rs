//! Interviewer personas: who the AI interviewer is (a system prompt for real LLMs) and its
//! script (greeting, questions, acknowledgements, closing) for the scripted interviewer,
//! loaded from TOML. Built-in personas are embedded from the repository's `personas/` folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// The persona used when a call does not ask for one.
pub const DEFAULT_PERSONA: &str = "interviewer";

/// The placeholder that the scripted interviewer fills with words from the candidate's
/// last answer; only meaningful in acknowledgements.
pub const ECHO: &str = "echo";

/// Built-in personas: (file name, TOML text). File names only label errors.
const BUILTIN: &[(&str, &str)] = &[
    (
        "personas/interviewer.toml",
        include_str!("../../personas/interviewer.toml"),
    ),
    (
        "personas/behavioral.toml",
        include_str!("../../personas/behavioral.toml"),
    ),
];

/// Why a persona could not be loaded. Every variant names the file (or `<inline>`).
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// The file could not be read.
    #[error("cannot read persona file {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has a missing, unknown or mistyped field (toml's message
    /// names the field and line).
    #[error("persona {origin}: {message}")]
    Parse {
        /// Where the TOML came from.
        origin: String,
        /// toml's description of the problem.
        message: String,
    },
    /// The TOML parsed but a field's value is unusable.
    #[error("persona {origin}: field `{field}`: {reason}")]
    Invalid {
        /// Where the TOML came from.
        origin: String,
        /// The offending field, e.g. `questions[2]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two files in one folder declare the same persona `id`.
    #[error("persona id `{id}` is declared by both {first} and {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// The first file that declared it.
        first: String,
        /// The second file that declared it.
        second: String,
    },
}

/// One interviewer persona. Templates may use `{placeholders}` filled by [`Persona::fill`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Stable identifier a call selects the persona by.
    pub id: String,
    /// Human-readable name, for UIs.
    pub name: String,
    /// One line on what kind of interview this is, for UIs.
    #[serde(default)]
    pub description: String,
    /// The system prompt sent to real LLMs (a template).
    pub system_prompt: String,
    /// The scripted interviewer's first words (a template), followed by the first question.
    pub greeting: String,
    /// The scripted interviewer's questions, asked in order (templates).
    pub questions: Vec<String>,
    /// Short reactions to an answer (templates, rotated); those with `{echo}` repeat a few of
    /// the candidate's words, the others are used when the answer is too short to echo.
    pub acknowledgements: Vec<String>,
    /// The scripted interviewer's last words (a template).
    pub closing: String,
    /// Values for placeholders the call's context does not set.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Words the candidate is likely to say (technologies, names): they prime the speech
    /// recogniser so they come out spelled right.
    #[serde(default)]
    pub vocabulary: Vec<String>,
    /// The interviewer's voice for this persona's calls, as `--voice` names one (the
    /// server's voice when absent).
    #[serde(default)]
    pub voice: Option<String>,
    /// The longest response, in sentences: the model's answer is stopped there, so the
    /// interviewer asks one question at a time (the greeting may take twice as many).
    #[serde(default = "default_max_sentences")]
    pub max_sentences: usize,
    /// What the interviewer says when the candidate's turn held no answer (silence, a
    /// cough, only "okay"): one per such turn in a row, the last one repeated. Templates;
    /// `{question}` is the last question asked. Empty: the interviewer waits in silence.
    #[serde(default = "default_silence_prompts")]
    pub silence_prompts: Vec<String>,
    /// Seconds of quiet after a turn with no answer before the interviewer prompts.
    #[serde(default = "default_silence_prompt_after_s")]
    pub silence_prompt_after_s: u32,
    /// What a good answer in this interview shows, for the model's feedback on each answer
    /// after the call (`--llm openai`); plain text.
    #[serde(default)]
    pub rubric: Option<String>,
}

/// [`Persona::max_sentences`] when the persona does not say.
pub const DEFAULT_MAX_SENTENCES: usize = 3;
/// [`Persona::silence_prompt_after_s`] when the persona does not say.
pub const DEFAULT_SILENCE_PROMPT_AFTER_S: u32 = 4;
/// The placeholder of [`Persona::silence_prompts`] filled with the last question.
pub const QUESTION: &str = "question";

fn default_max_sentences() -> usize {
    DEFAULT_MAX_SENTENCES
}

fn default_silence_prompts() -> Vec<String> {
    vec![
        "Take your time.".into(),
        "No rush. Let me repeat the question. {question}".into(),
    ]
}

fn default_silence_prompt_after_s() -> u32 {
    DEFAULT_SILENCE_PROMPT_AFTER_S
}

impl Persona {
    /// Parses and validates a persona; errors are labelled `<inline>`.
    pub fn from_toml_str(text: &str) -> Result<Self, PersonaError> {
        Self::parse(text, "<inline>")
    }

    /// Reads, parses and validates a persona file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, PersonaError> {
        let text = std::fs::read_to_string(path).map_err(|source| PersonaError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, PersonaError> {
        let persona: Persona = toml::from_str(text).map_err(|e| PersonaError::Parse {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        persona.validate(origin)?;
        Ok(persona)
    }

    fn validate(&self, origin: &str) -> Result<(), PersonaError> {
        let invalid = |field: String, reason: &str| PersonaError::Invalid {
            origin: origin.to_owned(),
            field,
            reason: reason.to_owned(),
        };
        let id_ok = !self.id.is_empty()
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(invalid(
                "id".into(),
                "must be non-empty ASCII letters, digits, `-` or `_`",
            ));
        }
        if self.max_sentences == 0 {
            return Err(invalid("max_sentences".into(), "must be at least 1"));
        }
        if self.questions.is_empty() {
            return Err(invalid("questions".into(), "needs at least one question"));
        }
        if !self
            .acknowledgements
            .iter()
            .any(|a| !placeholders(a).any(|p| p == ECHO))
        {
            return Err(invalid(
                "acknowledgements".into(),
                "needs at least one entry without {echo}, for answers too short to echo",
            ));
        }
        let mut templates: Vec<(String, &str)> = vec![
            ("system_prompt".into(), &self.system_prompt),
            ("greeting".into(), &self.greeting),
            ("closing".into(), &self.closing),
        ];
        for (i, q) in self.questions.iter().enumerate() {
            templates.push((format!("questions[{i}]"), q));
        }
        for (i, a) in self.acknowledgements.iter().enumerate() {
            templates.push((format!("acknowledgements[{i}]"), a));
        }
        for (i, p) in self.silence_prompts.iter().enumerate() {
            templates.push((format!("silence_prompts[{i}]"), p));
        }
        for (field, template) in templates {
            if field != "system_prompt" && template.trim().is_empty() {
                return Err(invalid(field, "must not be empty"));
            }
            for name in placeholders(template) {
                // Every placeholder needs a default so nothing like "{team}" is ever read
                // aloud; {echo} is supplied by the scripted interviewer itself.
                let allowed = if name == ECHO {
                    field.starts_with("acknowledgements")
                } else if name == QUESTION && field.starts_with("silence_prompts") {
                    true
                } else {
                    self.defaults.contains_key(name)
                };
                if !allowed {
                    let reason = if name == ECHO {
                        "{echo} is only allowed in acknowledgements".to_owned()
                    } else {
                        format!("placeholder {{{name}}} has no value in [defaults]")
                    };
                    return Err(invalid(field, &reason));
                }
            }
        }
        Ok(())
    }

    /// Fills `{name}` placeholders in `template` from `context`, then from the persona's
    /// `[defaults]`. Unknown placeholders are left as written (validation guarantees the
    /// persona's own templates have none); inserted values are not scanned again, so a
    /// context value containing braces is inserted literally.
    pub fn fill(&self, template: &str, context: &BTreeMap<String, String>) -> String {
        fill_with(template, |name| {
            context
                .get(name)
                .or_else(|| self.defaults.get(name))
                .map(String::as_str)
        })
    }
}

/// Fills `{name}` placeholders from `lookup`; a `{...}` that is not a placeholder name, or
/// that `lookup` does not know, is kept verbatim.
pub(crate) fn fill_with<'a>(template: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) if is_placeholder_name(&after[..end]) => {
                match lookup(&after[..end]) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[start..start + end + 2]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The placeholder names used in a template, in order.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|piece| {
        let name = piece.split_once('}')?.0;
        is_placeholder_name(name).then_some(name)
    })
}

/// The personas a server offers, by id.
#[derive(Debug, Clone)]
pub struct PersonaSet {
    personas: BTreeMap<String, Arc<Persona>>,
}

impl PersonaSet {
    /// The personas embedded in the binary (`interviewer`, `behavioral`).
    pub fn builtin() -> Self {
        let mut set = Self {
            personas: BTreeMap::new(),
        };
        for (origin, text) in BUILTIN {
            // Embedded at compile time and checked by a unit test, so this cannot fail in a
            // released binary.
            let persona = Persona::parse(text, origin)
                .unwrap_or_else(|e| panic!("built-in persona is invalid: {e}"));
            set.insert(persona);
        }
        set
    }

    /// Adds every `*.toml` in `dir` (not recursive), replacing personas with the same id.
    /// Returns the ids loaded, in file-name order. Nothing is added if any file fails.
    pub fn load_dir(&mut self, dir: impl AsRef<Path>) -> Result<Vec<String>, PersonaError> {
        let dir = dir.as_ref();
        let io = |source| PersonaError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut loaded: BTreeMap<String, (String, Persona)> = BTreeMap::new();
        let mut ids = Vec::new();
        for path in files {
            let persona = Persona::from_file(&path)?;
            let origin = path.display().to_string();
            if let Some((first, _)) = loaded.get(&persona.id) {
                return Err(PersonaError::DuplicateId {
                    id: persona.id.clone(),
                    first: first.clone(),
                    second: origin,
                });
            }
            ids.push(persona.id.clone());
            loaded.insert(persona.id.clone(), (origin, persona));
        }
        for (_, (_, persona)) in loaded {
            self.insert(persona);
        }
        Ok(ids)
    }

    /// Adds a persona, replacing any with the same id.
    pub fn insert(&mut self, persona: Persona) {
        self.personas.insert(persona.id.clone(), Arc::new(persona));
    }

    /// The persona with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Persona>> {
        self.personas.get(id).cloned()
    }

    /// All personas, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Persona>> {
        self.personas.values()
    }

    /// How many personas there are.
    pub fn len(&self) -> usize {
        self.personas.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.personas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
id = "mini"
name = "Mini"
system_prompt = "You interview for {role}."
greeting = "Hi {candidate}."
questions = ["Why {company}?"]
acknowledgements = ["Okay, {echo}.", "Thanks."]
closing = "Bye."
[defaults]
role = "a job"
company = "Acme"
candidate = "there"
"#;

    #[test]
    fn builtin_personas_are_valid_and_speakable() {
        let set = PersonaSet::builtin();
        let interviewer = set.get(DEFAULT_PERSONA).expect("default persona");
        assert_eq!(interviewer.questions.len(), 7);
        assert!(set.get("behavioral").is_some());
        for persona in set.iter() {
            let ctx = BTreeMap::new();
            for q in &persona.questions {
                let q = persona.fill(q, &ctx);
                assert!(!q.contains('{'), "unfilled: {q}");
                assert!(q.len() < 200, "too long to speak well: {q}");
            }
        }
    }

    #[test]
    fn fill_prefers_context_then_defaults() {
        let p = Persona::from_toml_str(MINIMAL).expect("valid");
        let mut ctx = BTreeMap::new();
        assert_eq!(p.fill("Hi {candidate}, {role}.", &ctx), "Hi there, a job.");
        ctx.insert("candidate".into(), "Ada {role}".into());
        assert_eq!(p.fill("Hi {candidate}.", &ctx), "Hi Ada {role}.");
        assert_eq!(
            p.fill("{unknown} {Not a name} {", &ctx),
            "{unknown} {Not a name} {"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let no_default = MINIMAL.replace("Why {company}?", "Why {team}?");
        let err = Persona::from_toml_str(&no_default).unwrap_err().to_string();
        assert!(
            err.contains("questions[0]") && err.contains("{team}"),
            "{err}"
        );

        let echo_in_greeting = MINIMAL.replace("Hi {candidate}.", "Hi {echo}.");
        let err = Persona::from_toml_str(&echo_in_greeting)
            .unwrap_err()
            .to_string();
        assert!(err.contains("greeting"), "{err}");

        let only_echo = MINIMAL.replace(r#", "Thanks.""#, "");
        let err = Persona::from_toml_str(&only_echo).unwrap_err().to_string();
        assert!(err.contains("acknowledgements"), "{err}");

        let missing = MINIMAL.replace("closing = \"Bye.\"", "");
        let err = Persona::from_toml_str(&missing).unwrap_err().to_string();
        assert!(err.contains("closing"), "{err}");

        let unknown = MINIMAL.replace("closing =", "closng = \"x\"\nclosing =");
        let err = Persona::from_toml_str(&unknown).unwrap_err().to_string();
        assert!(err.contains("closng"), "{err}");
    }

    #[test]
    fn load_dir_overrides_and_names_bad_files() {
        let dir = std::env::temp_dir().join(format!("callgate-personas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let custom = MINIMAL.replace("\"mini\"", "\"interviewer\"");
        std::fs::write(dir.join("a.toml"), &custom).expect("write");
        std::fs::write(dir.join("notes.txt"), "ignored").expect("write");
        let mut set = PersonaSet::builtin();
        let ids = set.load_dir(&dir).expect("loads");
        assert_eq!(ids, ["interviewer"]);
        assert_eq!(set.get("interviewer").expect("present").name, "Mini");
        assert!(set.get("behavioral").is_some());

        std::fs::write(dir.join("b.toml"), "id = 3").expect("write");
        let err = set.load_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("b.toml"), "{err}");
        std::fs::write(dir.join("b.toml"), &custom).expect("write");
        let err = set.load_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("a.toml") && err.contains("b.toml"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
