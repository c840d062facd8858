//! The 50 held-out chat prompts (training/heldout_chat.jsonl) through the chat example on the
//! default model (models/photon-tiny-q8_0.gguf, else -f16), greedy, HierGen, at most 256 tokens a
//! reply, one fresh conversation each (`/reset` between them): at least 90% of the replies must
//! end with a stop token. Skips loudly while the trained model is not in models/.
mod chat_support;

use chat_support::*;
use std::path::Path;
use std::time::Duration;

#[test]
fn heldout_prompts_end_with_the_stop_token() {
    let root = Path::new(ROOT);
    let have = [
        "models/photon-tiny-q8_0.gguf",
        "models/photon-tiny-f16.gguf",
    ]
    .iter()
    .any(|m| root.join(m).is_file());
    if !have {
        eprintln!("SKIPPED: heldout_prompts_end_with_the_stop_token: no trained model in models/");
        return;
    }
    let rows = std::fs::read_to_string(root.join("training/heldout_chat.jsonl")).unwrap();
    let prompts: Vec<String> = rows
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["user"].as_str().unwrap().replace(['\n', '\r'], " ")
        })
        .collect();
    assert_eq!(prompts.len(), 50);
    let mut input = String::new();
    for p in &prompts {
        input.push_str(p);
        input.push_str("\n/reset\n");
    }
    let mut cmd = std::process::Command::new(chat_bin());
    cmd.current_dir(root)
        .args(["--temp", "0", "--mode", "hiergen", "--max-tokens", "256"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = wait_output(child, Duration::from_secs(1800));
    writer.join().unwrap();
    let se = text(&out.stderr);
    assert!(out.status.success(), "{se}");
    let status: Vec<&str> = se
        .lines()
        .filter(|l| l.contains(" tokens/s · arena "))
        .collect();
    assert_eq!(status.len(), 50, "{se}");
    let ended = status
        .iter()
        .filter(|l| l.starts_with("[end of turn"))
        .count();
    eprintln!("held-out: {ended}/50 replies ended with a stop token");
    assert!(
        ended >= 45,
        "only {ended}/50 replies ended with a stop token:\n{se}"
    );
}
