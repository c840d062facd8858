//! End-to-end tests of the chat example (examples/chat/): the built binary run as a process
//! with piped input, on random-weight models with the project's tokenizer and chat template.
mod chat_support;

use chat_support::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn m() -> String {
    photon_model().display().to_string()
}

#[test]
fn one_shot_prompt() {
    let out = run(
        &["--model", &m(), "--prompt", "Good morrow, my lord.", "--temp", "0", "--max-tokens", "12"],
        b"",
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(so.ends_with('\n'), "{so:?}");
    let se = text(&out.stderr);
    assert!(se.contains("tokens/s"), "{se}");
}
