//! What the interview cases say: (espeak-ng voice, text), `|` where the speaker pauses.
//! Four voices take turns so no case leans on one.

/// Complete short answers: one to three words, and sentences with a pause at a comma.
pub const SHORT_ANSWERS: &[(&str, &str)] = &[
    ("en-us", "Yes."),
    ("en-gb", "No, I haven't."),
    ("en-us+f3", "Yes, I can."),
    ("en-us+m3", "About two years."),
    ("en-gb", "No."),
    (
        "en-us+f3",
        "Hi, my name is Priya Raman, | and I'm a backend engineer.",
    ),
    ("en-us", "Mostly Rust, | some Go, | and a little Python."),
    (
        "en-us+m3",
        "I worked at a bank for three years, | then at a small startup.",
    ),
    (
        "en-gb",
        "Yes, | I led the migration to Kubernetes last year.",
    ),
    ("en-us+f3", "Honestly, | I would start with the logs."),
    (
        "en-us",
        "In that case, | I would roll back first, | and then look for the cause.",
    ),
    (
        "en-us+m3",
        "We had three services, | a queue, | and one big Postgres database.",
    ),
    ("en-gb", "I think so, | yes."),
    ("en-us+f3", "Sure, | I can walk you through it."),
    ("en-us", "No, | I haven't used Kafka in production."),
    (
        "en-us+m3",
        "The short version is, | we cached the results and the problem went away.",
    ),
];

/// Answers with a thinking pause mid-clause, after a function word or a filler.
pub const PAUSE_ANSWERS: &[(&str, &str)] = &[
    (
        "en-us",
        "At my last job I was responsible for | the billing service.",
    ),
    (
        "en-gb",
        "The main problem was that the | database could not keep up with the writes.",
    ),
    (
        "en-us+f3",
        "I moved to backend work because | I like designing systems that have to scale.",
    ),
    (
        "en-us+m3",
        "We had a really small team and | everyone did a bit of everything.",
    ),
    (
        "en-us",
        "My manager asked me to lead a | migration away from the old payment gateway.",
    ),
    (
        "en-gb",
        "I fixed it by adding a | cache in front of the user service.",
    ),
    (
        "en-us+f3",
        "So, um, | I think the hardest part was the testing.",
    ),
    (
        "en-us+m3",
        "The service was written in Java and | we rewrote the hot path in Rust.",
    ),
    (
        "en-us",
        "I would start by looking at the | slowest queries in the logs.",
    ),
    (
        "en-gb",
        "We chose Kafka because | we needed to replay events after a failure.",
    ),
    (
        "en-us+f3",
        "It was a | tricky bug in how we handled time zones.",
    ),
    (
        "en-us+m3",
        "I spent most of my time on the | search indexing pipeline.",
    ),
    (
        "en-us",
        "Well, um, | we did not have any monitoring at first.",
    ),
    (
        "en-gb",
        "The team decided to use | Postgres instead of a document store.",
    ),
    (
        "en-us+f3",
        "Before that I was a | data engineer at a logistics company.",
    ),
    (
        "en-us+m3",
        "My first step was to | reproduce the problem on a staging server.",
    ),
    (
        "en-us",
        "We shipped the feature, but | the latency doubled for our largest customers.",
    ),
    (
        "en-gb",
        "I think the answer is that the | trade off depends on the read pattern.",
    ),
];

/// Behavioural answers of 60-90 s, sentence by sentence.
pub const LONG_ANSWERS: &[(&str, &[&str])] = &[
    (
        "en-us",
        &[
            "In my last role I was the tech lead for the payments team at a mid sized online retailer.",
            "We processed about two million card transactions a day, mostly through one old Java service.",
            "The problem was that the service failed every time traffic spiked during a sale.",
            "Customers saw timeouts at checkout, and the support team got hundreds of complaints each time.",
            "I started by adding tracing to every call the service made to the bank and to our database.",
            "The traces showed that most of the time went into a single lock around the fraud check.",
            "I proposed moving the fraud check into its own queue, so checkout would no longer wait for it.",
            "My manager was worried about the risk, so we agreed to try it on one percent of traffic first.",
            "I wrote the new consumer in Rust, with retries and a dead letter queue for the failures.",
            "We ran both paths side by side for two weeks and compared every result.",
            "After that we moved all of the traffic over during a quiet weekend.",
            "At the next big sale the error rate stayed under a tenth of a percent.",
            "What I learned is that measuring first saves weeks of guessing.",
        ],
    ),
    (
        "en-gb",
        &[
            "The project I am most proud of is the move of our search platform to a new cluster.",
            "The old cluster ran on servers that we managed by hand, and nobody wanted to touch them.",
            "Every upgrade took a whole weekend and usually broke something on Monday morning.",
            "I wrote a plan to rebuild the cluster with infrastructure as code and automated tests.",
            "Two senior engineers disagreed, because they thought the rewrite would take too long.",
            "So I built a small prototype in a week to show that the approach would work.",
            "The prototype indexed a copy of our real data and answered the same queries as production.",
            "That convinced the team, and we split the work into six small milestones.",
            "We moved one index at a time and kept the old cluster running as a fallback.",
            "Halfway through we found that one index used a plugin that the new version no longer supported.",
            "I replaced it with a simple script that cleaned the data before indexing.",
            "The whole migration took three months instead of the six that people had feared.",
            "Upgrades now take an hour on a weekday, and nobody dreads them any more.",
        ],
    ),
    (
        "en-us+f3",
        &[
            "One night I was on call when our main database ran out of disk space.",
            "Every service that wrote to it started failing, and the mobile app stopped loading.",
            "I first stopped the batch jobs that were writing the most data, to buy us some time.",
            "Then I looked at which tables had grown, and found that one log table was ten times its usual size.",
            "A deploy earlier that day had turned on debug logging for every request.",
            "I rolled back that deploy, and the growth stopped within a few minutes.",
            "After that I deleted the old log rows in small batches, so the database stayed responsive.",
            "The app was back after about forty minutes, and we lost no customer data.",
            "The next morning I wrote a short report about what happened and why.",
            "We added an alert on disk usage and a check in the pipeline for the logging level.",
            "I also moved the request logs out of the database and into our log service.",
            "Since then we have not had a single outage caused by disk space.",
            "It taught me to keep calm, fix the symptom first, and then fix the cause.",
        ],
    ),
];
