//! End-to-end tests of the chat example (examples/chat/, docs/chat.md): the built binary run as
//! a process with piped input, on random-weight models with the project's tokenizer vocabulary
//! and chat template (tests/chat_support/). Each bad-input behaviour documented in docs/chat.md
//! has a test here.
mod chat_support;

use chat_support::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn m() -> String {
    photon_model().display().to_string()
}

/// Status lines (one per reply) on standard error.
fn replies(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains(" tokens/s · arena "))
        .count()
}

fn chat(extra: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mm = m();
    let mut args = vec!["--model", mm.as_str(), "--seed", "7", "--max-tokens", "24"];
    args.extend_from_slice(extra);
    let out = run(&args, stdin, LIMIT);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn one_shot_prompt() {
    let (code, so, se) = chat(&["--prompt", "Good morrow, my lord.", "--temp", "0"], b"");
    assert_eq!(code, 0, "{se}");
    assert!(so.ends_with('\n') && so.len() > 1, "{so:?}");
    assert_eq!(replies(&se), 1, "{se}");
    assert!(se.contains("[max tokens · 24 tokens"), "{se}");
    // Greedy is deterministic; so is sampling with a seed.
    let (_, so2, _) = chat(&["--prompt", "Good morrow, my lord.", "--temp", "0"], b"");
    assert_eq!(so, so2);
    let (_, a, _) = chat(&["--prompt", "Good morrow", "--seed", "3"], b"");
    let (_, b, _) = chat(&["--prompt", "Good morrow", "--seed", "3"], b"");
    assert_eq!(a, b);
    // RecGen and the vanilla model answer too.
    let (code, so, se) = chat(&["--prompt", "Good morrow", "--mode", "recgen"], b"");
    assert_eq!(code, 0, "{se}");
    assert!(!so.is_empty());
    let van = model("vanilla", false, true, false).display().to_string();
    let out = run(
        &["--model", &van, "--prompt", "hi", "--max-tokens", "8"],
        b"",
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn one_shot_reads_prompt_from_stdin_and_raw() {
    let (code, so, se) = chat(&["--prompt", "-"], b"Good morrow, my lord.\n");
    assert_eq!(code, 0, "{se}");
    assert!(!so.is_empty());
    let (code, so, se) = chat(
        &["--raw", "--prompt", "-", "--temp", "0"],
        b"Once upon a time",
    );
    assert_eq!(code, 0, "{se}");
    assert!(!so.is_empty());
    // The prompt as an argument, standard input a pipe that is never read.
    let (code, _, se) = chat(&["--raw", "--prompt", "Once upon a time"], b"ignored\n");
    assert_eq!(code, 0, "{se}");
    // A prompt on stdin that is not UTF-8, or empty, is an error.
    let (code, _, se) = chat(&["--prompt", "-"], b"\xff\xfe\n");
    assert_eq!(code, 1);
    assert!(
        se.contains("chat: error: the prompt on standard input is not valid UTF-8"),
        "{se}"
    );
    let (code, _, se) = chat(&["--prompt", "-"], b"");
    assert_eq!(code, 1);
    assert!(se.contains("chat: error: the prompt is empty"), "{se}");
}

#[test]
fn piped_multi_turn() {
    let (code, so, se) = chat(
        &[],
        b"Good morrow, my lord.\nWhat news from the court?\nAnd then?\n",
    );
    assert_eq!(code, 0, "{se}");
    assert_eq!(replies(&se), 3, "{se}");
    assert!(!so.is_empty());
    // Piped input is echoed after the prompt on stderr: a transcript.
    assert!(se.contains("> What news from the court?\n"), "{se}");
    assert!(se.starts_with("photon chat · "), "{se}");
    // --quiet: nothing on stderr but notices.
    let (code, so, se) = chat(&["--quiet"], b"Good morrow\n\xff\n/bogus\nAnd then?\n");
    assert_eq!(code, 0, "{se}");
    assert!(!so.is_empty());
    assert_eq!(
        se,
        "chat: that line is not valid UTF-8; not sent\nchat: unknown command /bogus; /help lists them\n"
    );
}

#[test]
fn commands() {
    let input = b"/help\n/stats\n/mode recgen\nhello\n/mode\n/mode fast\n/reset\n/stats\n/bogus \x1b[31m\n//slash\n/mode HierGen\nhi\n/quit\nnever answered\n";
    let (code, _, se) = chat(&[], input);
    assert_eq!(code, 0, "{se}");
    no_panic(&se);
    assert!(se.contains("commands:\n  /reset"), "{se}");
    assert!(se.contains("model:    random-photon (PHOTON"), "{se}");
    assert!(se.contains("(mode: RecGen)"), "{se}");
    assert!(se.contains("\nmode: RecGen\n"), "{se}");
    assert!(se.contains("chat: usage: /mode hiergen|recgen"), "{se}");
    assert!(se.contains("(conversation reset)"), "{se}");
    assert!(
        se.contains("context:  0 tokens in the conversation"),
        "{se}"
    );
    assert!(
        se.contains("chat: unknown command /bogus; /help lists them"),
        "{se}"
    );
    assert!(se.contains("(mode: HierGen)"), "{se}");
    // hello, //slash (sent as "/slash"), hi; nothing after /quit.
    assert_eq!(replies(&se), 3, "{se}");
    assert!(!se.contains("never answered"), "{se}");
    assert!(!se.contains('\u{1b}'), "{se:?}");
}

#[test]
fn invalid_utf8_line_is_refused_and_chat_goes_on() {
    let (code, _, se) = chat(&[], b"caf\xe9 au lait\nhello\n");
    assert_eq!(code, 0, "{se}");
    assert!(
        se.contains("chat: that line is not valid UTF-8; not sent"),
        "{se}"
    );
    assert_eq!(replies(&se), 1, "{se}");
}

#[test]
fn empty_lines_are_ignored() {
    let (code, _, se) = chat(&[], b"\n   \n\t\n\r\nhello\n\n");
    assert_eq!(code, 0, "{se}");
    assert_eq!(replies(&se), 1, "{se}");
    assert!(!se.contains("chat: "), "no notice expected: {se}");
}

#[test]
fn escape_and_control_characters_never_reach_the_terminal() {
    let (code, so, se) = chat(
        &[],
        b"hi \x1b[31mred\x1b[0m \x07there\x1b]0;pwned\x07 \xc2\x9b2J \xe2\x80\xae!\n",
    );
    assert_eq!(code, 0, "{se}");
    assert!(
        se.contains("chat: removed 6 control character(s) or escape sequence(s) from your message"),
        "{se}"
    );
    assert!(se.contains("> hi red there  !\n"), "{se:?}");
    assert_eq!(replies(&se), 1);
    for s in [&so, &se] {
        assert!(
            !s.contains('\u{1b}') && !s.contains('\u{7}') && !s.contains('\u{9b}'),
            "{s:?}"
        );
    }
    // Model output: a model that mostly samples control tokens and the bytes 0x00..0x48 (ESC,
    // BEL, CR, ... among them) prints only newlines, tabs and visible characters.
    let zero = chatty_model().display().to_string();
    let out = run(
        &[
            "--model",
            &zero,
            "--prompt",
            "hi",
            "--top-k",
            "80",
            "--temp",
            "1",
            "--ignore-eos",
            "--max-tokens",
            "400",
            "--seed",
            "1",
        ],
        b"",
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(
        so.contains('\u{241b}'),
        "expected a visible ESC (␛) in {so:?}"
    );
    for c in so.chars() {
        assert!(
            c == '\n' || c == '\t' || !c.is_control(),
            "raw control {c:?} in {so:?}"
        );
    }
}

#[test]
fn overlong_line_is_refused_with_a_notice() {
    // Context 512 tokens in the test model: messages up to 256 tokens.
    let mut input = Vec::new();
    input.extend_from_slice(&b"a ".repeat(300)); // ~300 tokens: tokenized, then refused
    input.push(b'\n');
    input.extend_from_slice(&b"lorem ipsum ".repeat(200_000)); // 2.4 MB: refused unread
    input.push(b'\n');
    input.extend_from_slice(b"hello\n");
    let (code, _, se) = chat(&[], &input);
    assert_eq!(code, 0, "{se}");
    assert!(
        se.contains("tokens, the limit is 256 (half of the 512-token context); not sent"),
        "{se}"
    );
    assert!(se.contains("chat: message too long: 2400000 bytes"), "{se}");
    assert_eq!(replies(&se), 1, "{se}");
    // One-shot: an error.
    let long = "a ".repeat(300);
    let (code, _, se) = chat(&["--prompt", &long], b"");
    assert_eq!(code, 1);
    assert!(se.starts_with("chat: error: message too long"), "{se}");
}

#[test]
fn end_of_input_mid_reply_exits_cleanly() {
    // The input ends (no final newline) while the reply is being generated.
    let (code, so, se) = chat(&["--ignore-eos", "--max-tokens", "300"], b"hello");
    assert_eq!(code, 0, "{se}");
    assert_eq!(replies(&se), 1, "{se}");
    assert!(se.contains("[max tokens · 300 tokens"), "{se}");
    assert!(so.ends_with('\n'));
    // Nothing at all, and standard input already closed.
    let out = Command::new(chat_bin())
        .args(["--model", &m()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn bad_flags_are_one_line_errors() {
    let mm = m();
    for args in [
        vec!["--temp", "-1"],
        vec!["--temp", "nan"],
        vec!["--top-p", "0"],
        vec!["--top-p", "1.5"],
        vec!["--min-p", "-0.1"],
        vec!["--repeat-penalty", "0"],
        vec!["--top-k", "-3"],
        vec!["--memory", "0"],
        vec!["--memory", "12Q"],
        vec!["--memory", "-5M"],
        vec!["--max-tokens", "0"],
        vec!["--threads", "0"],
        vec!["--mode", "fast"],
        vec!["--seed", "x"],
        vec!["--bogus"],
    ] {
        let mut a = vec!["--model", mm.as_str(), "--prompt", "hi"];
        a.extend_from_slice(&args);
        let out = run(&a, b"", LIMIT);
        let se = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {se}");
        assert!(se.starts_with("chat: error: "), "{args:?}: {se}");
        assert_eq!(se.lines().count(), 1, "{args:?}: {se}");
        assert!(out.stdout.is_empty());
    }
    // A budget below the model's minimum: the engine's message, with the minimum.
    let out = run(
        &["--model", &mm, "--prompt", "hi", "--memory", "1K"],
        b"",
        LIMIT,
    );
    let se = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{se}");
    assert!(
        se.starts_with("chat: error: memory budget:") && se.contains("minimum"),
        "{se}"
    );
    assert_eq!(se.lines().count(), 1, "{se}");
    // Help works.
    let out = run(&["--help"], b"", LIMIT);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--memory <BYTES>"));
}

#[test]
fn missing_or_bad_model_files() {
    let tmp = std::env::temp_dir().join(format!("photon-chat-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let good = std::fs::read(photon_model()).unwrap();
    let truncated = tmp.join("truncated.gguf");
    std::fs::write(&truncated, &good[..good.len() / 3]).unwrap();
    let garbage = tmp.join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let empty = tmp.join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let cases = [
        (tmp.join("missing.gguf"), "No such file"),
        (truncated, "malformed model file"),
        (garbage, "malformed model file"),
        (empty, "malformed model file"),
        (tmp.clone(), "is a directory"),
    ];
    for (p, want) in cases {
        let ps = p.display().to_string();
        let out = run(&["--model", &ps, "--prompt", "hi"], b"", LIMIT);
        let se = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{ps}: {se}");
        assert!(
            se.starts_with("chat: error: ") && se.contains(want),
            "{ps}: {se}"
        );
        assert_eq!(se.lines().count(), 1, "{ps}: {se}");
    }
    // No chat template: an error in chat mode, fine with --raw.
    let plain = model("no-template", true, false, false)
        .display()
        .to_string();
    let out = run(&["--model", &plain, "--prompt", "hi"], b"", LIMIT);
    let se = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{se}");
    assert!(
        se.contains("has no chat template") && se.contains("--raw"),
        "{se}"
    );
    let out = run(
        &[
            "--model",
            &plain,
            "--raw",
            "--prompt",
            "hi",
            "--max-tokens",
            "5",
        ],
        b"",
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The default model is looked up in ./models first.
    let models = tmp.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(photon_model(), models.join("photon-tiny-f16.gguf")).unwrap();
    let out = Command::new(chat_bin())
        .current_dir(&tmp)
        .args(["--prompt", "hi", "--max-tokens", "4"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Spawns an interactive chat whose replies never end by themselves.
fn endless() -> (std::process::Child, Watch, Watch) {
    let mut child = Command::new(chat_bin())
        .args([
            "--model",
            &m(),
            "--ignore-eos",
            "--max-tokens",
            "100000000",
            "--seed",
            "1",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Watch::new(child.stdout.take().unwrap());
    let err = Watch::new(child.stderr.take().unwrap());
    (child, out, err)
}

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn ctrl_c_stops_the_reply_then_twice_at_the_prompt_quits() {
    let (mut child, mut out, mut err) = endless();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    // Synchronise on what the process prints, never on sleeps: the prompt, then reply text.
    assert!(err.wait_for("> ", 1, WAIT), "no prompt: {}", err.text());
    stdin.write_all(b"hello\n").unwrap();
    assert!(out.wait_bytes(64, WAIT), "no reply text");
    sigint(pid);
    assert!(err.wait_for("[interrupted · ", 1, WAIT), "{}", err.text());
    assert!(err.wait_for("> ", 2, WAIT), "{}", err.text());
    // Still alive and chatting: a second reply, interrupted too.
    stdin.write_all(b"again\n").unwrap();
    let n = out.seen.len();
    assert!(out.wait_bytes(n + 64, WAIT), "no second reply");
    sigint(pid);
    assert!(err.wait_for("[interrupted · ", 2, WAIT), "{}", err.text());
    assert!(err.wait_for("> ", 3, WAIT), "{}", err.text());
    assert!(
        child.try_wait().unwrap().is_none(),
        "quit after stopping a reply"
    );
    // One press at the idle prompt: a notice; reading goes on (the read is restarted) and input
    // disarms it.
    sigint(pid);
    assert!(
        err.wait_for("(Ctrl-C again to quit", 1, WAIT),
        "{}",
        err.text()
    );
    stdin.write_all(b"/stats\n").unwrap();
    assert!(err.wait_for("\nmodel:    ", 1, WAIT), "{}", err.text());
    assert!(err.wait_for("\n> ", 5, WAIT), "{}", err.text());
    // At the idle prompt: one press arms, a second within a second quits with 130. Under heavy
    // load the second may come late; the notice is then printed again and we press again.
    sigint(pid);
    let mut notices = 2;
    assert!(
        err.wait_for("(Ctrl-C again to quit", notices, WAIT),
        "{}",
        err.text()
    );
    let status = loop {
        sigint(pid);
        let t0 = std::time::Instant::now();
        let mut st = None;
        while t0.elapsed() < Duration::from_secs(10) {
            if let Some(s) = child.try_wait().unwrap() {
                st = Some(s);
                break;
            }
            if err.wait_for(
                "(Ctrl-C again to quit",
                notices + 1,
                Duration::from_millis(50),
            ) {
                break;
            }
        }
        if let Some(s) = st {
            break s;
        }
        notices += 1;
        assert!(notices < 6, "never quit: {}", err.text());
    };
    assert_eq!(status.code(), Some(130), "{}", err.text());
    err.drain(Duration::from_secs(5));
    no_panic(&err.text());
}

#[test]
fn ctrl_c_in_one_shot_mode_ends_with_130() {
    let mut child = Command::new(chat_bin())
        .args([
            "--model",
            &m(),
            "--prompt",
            "hello",
            "--ignore-eos",
            "--max-tokens",
            "100000000",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Watch::new(child.stdout.take().unwrap());
    let mut err = Watch::new(child.stderr.take().unwrap());
    assert!(out.wait_bytes(64, WAIT), "no reply text");
    sigint(child.id());
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < WAIT, "did not stop");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    err.drain(Duration::from_secs(5));
    assert!(err.text().contains("[interrupted · "), "{}", err.text());
}

#[test]
fn long_conversation_slides_in_a_small_arena() {
    // 30 turns of ~80 tokens in an arena whose coarse cache spans 384 tokens: the oldest
    // positions give way (attention sink + sliding window), in both modes, without errors.
    for mode in ["hiergen", "recgen"] {
        let mut input = String::new();
        for i in 0..30 {
            input.push_str(&format!(
                "Tell me more about the king and the court, my lord, number {i}\n"
            ));
        }
        input.push_str("/stats\n");
        let (code, _, se) = chat(
            &[
                "--memory",
                "330K",
                "--max-tokens",
                "60",
                "--ignore-eos",
                "--mode",
                mode,
            ],
            input.as_bytes(),
        );
        assert_eq!(code, 0, "{se}");
        no_panic(&se);
        assert_eq!(replies(&se), 30, "{se}");
        let evicted: u64 = se
            .split(" positions, ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(evicted > 50, "{mode}: {se}");
    }
}
