use super::*;

#[test]
fn all_expands_once_in_order() {
    assert_eq!(
        Case::expand(&[Case::Pauses, Case::All, Case::Short]),
        [
            Case::Pauses,
            Case::Short,
            Case::Long,
            Case::Noise20,
            Case::Noise15
        ]
    );
    assert_eq!(Case::Noise20.name(), "noise20");
}

#[test]
fn parts_split_at_the_pause_marks() {
    assert_eq!(parts("Yes."), ["Yes."]);
    assert_eq!(
        parts("Hi, my name is Priya Raman, | and I'm a backend engineer."),
        ["Hi, my name is Priya Raman,", "and I'm a backend engineer."]
    );
    assert_eq!(parts(" a |  b  | "), ["a", "b"]);
}

fn voices(plans: &[Plan]) -> std::collections::BTreeSet<&str> {
    plans.iter().map(|p| p.voice).collect()
}

#[test]
fn pause_case_has_sixteen_answers_in_three_voices_with_thinking_pauses() {
    let plans = plans(Case::Pauses, 1);
    assert!(plans.len() >= 16, "{}", plans.len());
    assert!(voices(&plans).len() >= 3);
    for p in &plans {
        assert_eq!(p.parts.len(), 2, "{p:?}");
        assert!((700..=1500).contains(&p.pauses_ms[0]), "{p:?}");
        assert!((300..=1000).contains(&p.lead_in_ms), "{p:?}");
        assert!(p.noise.is_none() && p.group.is_none());
    }
    // The pause follows a function word or a filler, never a finished sentence.
    let ends: Vec<&str> = plans
        .iter()
        .map(|p| p.parts[0].split_whitespace().last().unwrap_or(""))
        .collect();
    assert!(ends.iter().all(|w| !w.ends_with('.')), "{ends:?}");
    assert!(ends.contains(&"the") && ends.contains(&"because") && ends.contains(&"um,"));
}

#[test]
fn short_case_has_tiny_answers_and_comma_pauses() {
    let plans = plans(Case::Short, 1);
    let words = |p: &Plan| p.text().split_whitespace().count();
    assert!(plans.iter().filter(|p| words(p) <= 3).count() >= 4);
    let comma: Vec<&Plan> = plans.iter().filter(|p| p.parts.len() > 1).collect();
    assert!(comma.len() >= 8);
    for p in comma {
        assert!(
            p.pauses_ms.iter().all(|ms| (300..=600).contains(ms)),
            "{p:?}"
        );
        assert!(
            p.parts[..p.parts.len() - 1]
                .iter()
                .all(|t| t.ends_with(',')),
            "{p:?}"
        );
    }
    assert!(voices(&plans).len() >= 3);
}

#[test]
fn long_case_pairs_each_answer_with_its_sentences() {
    let plans = plans(Case::Long, 1);
    let long: Vec<&Plan> = plans.iter().filter(|p| p.group.is_none()).collect();
    assert_eq!(long.len(), LONG_ANSWERS.len());
    for (i, l) in long.iter().enumerate() {
        assert!(
            l.pauses_ms.iter().all(|ms| (300..=800).contains(ms)),
            "{l:?}"
        );
        let sentences: Vec<&Plan> = plans
            .iter()
            .filter(|p| p.group == Some("sentences") && p.answer == i)
            .collect();
        assert_eq!(sentences.len(), l.parts.len());
        let joined: Vec<String> = sentences.iter().map(|s| s.text()).collect();
        assert_eq!(joined.join(" "), l.text(), "the same words, short and long");
    }
    let names: std::collections::BTreeSet<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), plans.len(), "file names are unique");
}

#[test]
fn noise_cases_are_the_short_answers_in_a_room() {
    let short = plans(Case::Short, 1);
    let noisy = plans(Case::Noise15, 1);
    assert_eq!(noisy.len(), short.len());
    for (s, n) in short.iter().zip(&noisy) {
        assert_eq!(
            (&s.parts, &s.pauses_ms, s.voice),
            (&n.parts, &n.pauses_ms, n.voice)
        );
        let noise = n.noise.expect("noise");
        assert_eq!(noise.snr_db, 15.0);
        assert!(
            (1500..=2500).contains(&n.lead_in_ms) && n.tail_ms >= 3000,
            "{n:?}"
        );
        assert!(noise.offset_ms + NOISE_STRETCH_MS <= NOISE_BED_MS);
    }
    let kinds: Vec<NoiseKind> = noisy
        .iter()
        .filter_map(|p| p.noise.map(|n| n.kind))
        .collect();
    assert!(kinds.contains(&NoiseKind::Pink) && kinds.contains(&NoiseKind::Brown));
}

#[test]
fn fingerprint_follows_the_recipe() {
    let a = fingerprint(&plans(Case::Pauses, 1));
    assert_eq!(a, fingerprint(&plans(Case::Pauses, 1)));
    assert_ne!(a, fingerprint(&plans(Case::Pauses, 2)));
    assert_ne!(a, fingerprint(&plans(Case::Short, 1)));
    assert_eq!(a.len(), 16);
}

#[test]
fn noise_is_mixed_at_the_asked_snr() {
    use crate::audio::test_signals::{noise, tone};
    let rate = 16000;
    let mut speech = vec![0.0f32; 8000];
    speech.extend(tone(16000, rate, 0.3));
    speech.extend(vec![0.0f32; 8000]);
    let level = active_rms(&speech, rate);
    assert!((level - 0.3 / 2f64.sqrt()).abs() < 0.01, "{level}");
    let clean = speech.clone();
    let bed: Vec<f32> = noise(speech.len(), 7)
        .iter()
        .map(|s| s * 0.5 + 0.2)
        .collect();
    add_noise(&mut speech, &bed, level, 20.0);
    let added: Vec<f32> = speech.iter().zip(&clean).map(|(m, c)| m - c).collect();
    let rms =
        (added.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / added.len() as f64).sqrt();
    let snr = 20.0 * (level / rms).log10();
    assert!((snr - 20.0).abs() < 0.1, "{snr} dB");
    assert!(
        added.iter().map(|&v| f64::from(v)).sum::<f64>().abs() / (added.len() as f64) < 1e-3,
        "DC removed"
    );
    // Too loud a mix is scaled down whole, keeping its SNR.
    let mut loud = vec![0.9f32; 100];
    add_noise(&mut loud, &bed[..100], 0.9, 0.0);
    assert!(loud.iter().all(|s| s.abs() <= 0.9501), "{loud:?}");
}
