//! Tokenizer against golden fixtures from `sentencepiece` itself
//! (tests/fixtures/make_tokenizer_fixture.py), plus seeded random round trips.
mod common;

use common::json::Json;
use photon_runtime::tokenizer::{Fragment, TokenDecoder, TokenType, Tokenizer, TokenizerVocab};
use photon_runtime::Error;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn load_json(name: &str) -> Json {
    let path = format!("{FIXTURES}/{name}");
    Json::parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn vocab_from_json(v: &Json) -> TokenizerVocab {
    TokenizerVocab {
        tokens: v
            .get("tokens")
            .arr()
            .iter()
            .map(|t| t.str().to_string())
            .collect(),
        scores: v
            .get("scores")
            .arr()
            .iter()
            .map(|s| s.f64() as f32)
            .collect(),
        token_types: v
            .get("token_types")
            .arr()
            .iter()
            .map(|t| t.i64() as i32)
            .collect(),
        bos_id: v.get("bos_id").opt_u32(),
        eos_id: v.get("eos_id").opt_u32(),
        unk_id: v.get("unk_id").opt_u32(),
        pad_id: v.get("pad_id").opt_u32(),
        eot_id: v.get("eot_id").opt_u32(),
        add_space_prefix: v.get("add_space_prefix").bool(),
        add_bos: v.get("add_bos").bool(),
    }
}

fn vocab() -> TokenizerVocab {
    vocab_from_json(&load_json("tokenizer_vocab.json"))
}

fn tokenizer() -> Tokenizer {
    Tokenizer::new(vocab()).expect("fixture vocabulary is valid")
}

fn encode(tok: &Tokenizer, text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    tok.encode(text, &mut out).unwrap();
    out
}

/// Decodes one id at a time, checking that nothing but whole characters ever comes out.
fn stream_decode(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut d = TokenDecoder::new();
    let mut out = String::new();
    for &id in ids {
        d.push(tok, id, &mut out).unwrap();
        assert!(d.pending_bytes().len() < 4);
    }
    d.finish(&mut out);
    assert!(d.pending_bytes().is_empty());
    out
}

#[test]
fn golden_encode_matches_sentencepiece() {
    let tok = tokenizer();
    let cases = load_json("tokenizer_cases.json");
    let cases = cases.get("encode").arr();
    assert!(cases.len() >= 60);
    let mut failures = Vec::new();
    for c in cases {
        let text = c.get("text").str();
        let want = c.get("ids").u32s();
        let got = encode(&tok, text);
        if got != want {
            failures.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_decode_of_encode_cases() {
    let tok = tokenizer();
    let cases = load_json("tokenizer_cases.json");
    for c in cases.get("encode").arr() {
        let text = c.get("text").str();
        let ids = c.get("ids").u32s();
        let sp_decoded = c.get("decoded").str();
        assert_eq!(tok.decode(&ids), sp_decoded, "decode of {text:?}");
        assert_eq!(
            stream_decode(&tok, &ids),
            sp_decoded,
            "streaming decode of {text:?}"
        );
        if !text.contains('\u{2581}') {
            // sentencepiece reads a literal ▁ back as a space; everything else round-trips.
            assert_eq!(tok.decode(&encode(&tok, text)), text);
        }
    }
}

#[test]
fn golden_decode_matches_sentencepiece() {
    let tok = tokenizer();
    let cases = load_json("tokenizer_cases.json");
    let cases = cases.get("decode").arr();
    assert!(cases.len() >= 20);
    for c in cases {
        let ids = c.get("ids").u32s();
        let want = c.get("text").str();
        assert_eq!(tok.decode(&ids), want, "decode {ids:?}");
        assert_eq!(stream_decode(&tok, &ids), want, "streaming decode {ids:?}");
    }
}

#[test]
fn streaming_decoder_holds_partial_characters() {
    let tok = tokenizer();
    let ids = encode(&tok, "a😀b");
    let mut d = TokenDecoder::new();
    let mut out = String::new();
    let mut lens = Vec::new();
    for &id in &ids {
        d.push(&tok, id, &mut out).unwrap();
        lens.push(out.len());
    }
    assert_eq!(out, "a😀b");
    // 😀 is four byte tokens: nothing appears until the fourth.
    let first_byte = ids
        .iter()
        .position(|&id| tok.token_type(id) == Some(TokenType::Byte))
        .unwrap();
    assert_eq!(lens[first_byte], lens[first_byte - 1]);
    assert_eq!(lens[first_byte + 2], lens[first_byte - 1]);
    assert_eq!(lens[first_byte + 3], lens[first_byte - 1] + 4);
    // Out-of-range ids are an input error for the streaming decoder.
    assert!(matches!(
        d.push(&tok, 1 << 30, &mut out),
        Err(Error::Input(_))
    ));
}

#[test]
fn dummy_prefix_dropped_after_bos_and_controls_only_once() {
    let tok = tokenizer();
    let bos = tok.bos().unwrap();
    let user = tok.token_id("<|user|>").unwrap();
    let mut ids = vec![bos, user];
    ids.extend(encode(&tok, "hello"));
    ids.extend(encode(&tok, "world"));
    assert_eq!(tok.decode(&ids), "hello world");
}

/// xorshift64*: a tiny seeded generator for test strings.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_string(rng: &mut Rng) -> String {
    let len = rng.below(60) as usize;
    let mut s = String::new();
    for _ in 0..len {
        let c = match rng.below(8) {
            0..=2 => (b' ' + rng.below(95) as u8) as char,
            3 => [' ', ' ', '\n', '\t'][rng.below(4) as usize],
            4 => char::from_u32(0xA0 + rng.below(0x200) as u32).unwrap(),
            5 => char::from_u32(0x4E00 + rng.below(0x100) as u32).unwrap(),
            6 => char::from_u32(0x1F600 + rng.below(0x50) as u32).unwrap(),
            _ => loop {
                if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                    break c;
                }
            },
        };
        if c != '\u{2581}' {
            s.push(c);
        }
    }
    s
}

#[test]
fn random_round_trip() {
    let tok = tokenizer();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let s = random_string(&mut rng);
        let ids = encode(&tok, &s);
        for &id in &ids {
            let t = tok.token_type(id).unwrap();
            assert!(
                matches!(
                    t,
                    TokenType::Normal | TokenType::Byte | TokenType::UserDefined
                ),
                "{s:?} gave {t:?}"
            );
        }
        assert_eq!(tok.decode(&ids), s);
        assert_eq!(stream_decode(&tok, &ids), s);
    }
}

#[test]
fn control_names_in_text_are_ordinary_characters() {
    let tok = tokenizer();
    for text in [
        "<s>",
        "</s>",
        "<|user|>",
        "<|assistant|>",
        "<|end|>",
        "<unk>",
        "<pad>",
        "x<|end|>y",
    ] {
        let ids = encode(&tok, text);
        assert!(
            ids.iter()
                .all(|&id| tok.token_type(id) != Some(TokenType::Control)),
            "{text:?} -> {ids:?}"
        );
        assert_eq!(tok.decode(&ids), text);
    }
}

#[test]
fn special_ids_and_lookup() {
    let tok = tokenizer();
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    assert_eq!(tok.unk(), Some(0));
    assert_eq!(tok.pad(), Some(3));
    let end = tok.token_id("<|end|>").unwrap();
    assert_eq!(tok.eot(), Some(end));
    assert!(tok.is_end(end) && tok.is_end(2) && !tok.is_end(1));
    for name in ["<|user|>", "<|assistant|>", "<|end|>", "<s>", "</s>"] {
        let id = tok.token_id(name).unwrap();
        assert_eq!(tok.token_type(id), Some(TokenType::Control));
        assert_eq!(tok.token(id), Some(name));
    }
    assert_eq!(tok.token_id("<|nope|>"), None);
    assert!(tok.add_bos() && tok.add_space_prefix() && tok.has_byte_fallback());
    assert_eq!(tok.vocab_size(), 4096);
}

#[test]
fn split_special_finds_control_names() {
    let tok = tokenizer();
    let user = tok.token_id("<|user|>").unwrap();
    let end = tok.token_id("<|end|>").unwrap();
    let frags: Vec<_> = tok.split_special("<|user|>\nHi there<|end|>\n").collect();
    assert_eq!(
        frags,
        vec![
            Fragment::Token(user),
            Fragment::Text("\nHi there"),
            Fragment::Token(end),
            Fragment::Text("\n")
        ]
    );
    let frags: Vec<_> = tok.split_special("plain").collect();
    assert_eq!(frags, vec![Fragment::Text("plain")]);
    assert_eq!(tok.split_special("").count(), 0);
}

#[test]
fn encode_special_matches_training_chat_format() {
    // training/prepare.py: [USER] + sp.encode(u) + [END] + [ASSISTANT] + sp.encode(a) + [END]
    let tok = tokenizer();
    let (user, asst, end) = (
        tok.token_id("<|user|>").unwrap(),
        tok.token_id("<|assistant|>").unwrap(),
        tok.token_id("<|end|>").unwrap(),
    );
    let mut got = Vec::new();
    tok.encode_special(
        "<|user|>Who is there?<|end|><|assistant|>Nay, answer me.<|end|>",
        &mut got,
    )
    .unwrap();
    let mut want = vec![user];
    want.extend(encode(&tok, "Who is there?"));
    want.extend([end, asst]);
    want.extend(encode(&tok, "Nay, answer me."));
    want.push(end);
    assert_eq!(got, want);
    // As sentencepiece decodes it; a chat front end decodes each reply with a fresh decoder.
    assert_eq!(tok.decode(&got), "Who is there? Nay, answer me.");
}

#[test]
fn continuation_has_no_dummy_prefix() {
    let tok = tokenizer();
    let mut a = Vec::new();
    tok.encode_continuation("hello", &mut a).unwrap();
    let mut b = Vec::new();
    tok.encode_with_prefix("hello", true, &mut b).unwrap();
    assert_eq!(b, encode(&tok, "hello"));
    assert_ne!(a, b);
    assert_eq!(tok.decode(&a), "hello");
}

#[test]
fn long_input_is_fast() {
    // Quadratic rescans would take minutes here.
    let tok = tokenizer();
    let text = "the quick brown fox, jumps over the lazy dog; ".repeat(20_000)
        + &"a".repeat(200_000)
        + &"é".repeat(50_000);
    let t = std::time::Instant::now();
    let ids = encode(&tok, &text);
    let dt = t.elapsed();
    assert!(
        dt.as_secs_f64() < 5.0,
        "encoding {} bytes took {dt:?}",
        text.len()
    );
    println!(
        "encoded {} bytes into {} tokens in {dt:?}",
        text.len(),
        ids.len()
    );
    assert_eq!(tok.decode(&ids), text);
}

fn tiny_vocab() -> TokenizerVocab {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for p in ["▁", "a", "b", "c", "ab", "bc", "abc"] {
        tokens.push(p.into());
        types.push(1);
    }
    let n = tokens.len();
    TokenizerVocab {
        tokens,
        scores: vec![0.0; n],
        token_types: types,
        bos_id: Some(1),
        eos_id: Some(2),
        unk_id: Some(0),
        pad_id: None,
        eot_id: None,
        add_space_prefix: false,
        add_bos: true,
    }
}

#[test]
fn bpe_ties_merge_leftmost_and_scores_rule() {
    let mut v = tiny_vocab();
    let id = |v: &TokenizerVocab, p: &str| v.tokens.iter().position(|t| t == p).unwrap() as u32;
    let tok = Tokenizer::new(v.clone()).unwrap();
    let mut out = Vec::new();
    tok.encode("abc", &mut out).unwrap();
    assert_eq!(out, vec![id(&v, "abc")]);
    // "ab" and "bc" tie: the leftmost pair merges first. With "abc" unused, the merge that
    // reached it is undone, which shows which pair went first: ab + c.
    let abc = id(&v, "abc") as usize;
    v.token_types[abc] = 5;
    let tok = Tokenizer::new(v.clone()).unwrap();
    out.clear();
    tok.encode("abc", &mut out).unwrap();
    assert_eq!(out, vec![id(&v, "ab"), id(&v, "c")]);
    // A higher score for "bc" wins over the leftmost "ab".
    let bc = id(&v, "bc") as usize;
    v.scores[bc] = 1.0;
    let tok = Tokenizer::new(v.clone()).unwrap();
    out.clear();
    tok.encode("abc", &mut out).unwrap();
    assert_eq!(out, vec![id(&v, "a"), id(&v, "bc")]);
    // Characters outside the vocabulary fall back to bytes.
    out.clear();
    tok.encode("abd", &mut out).unwrap();
    assert_eq!(out, vec![id(&v, "ab"), 3 + u32::from(b'd')]);
}

#[test]
fn unused_pieces_are_resegmented() {
    let mut v = tiny_vocab();
    let pos = |p: &str| v.tokens.iter().position(|t| t == p).unwrap();
    let (ab, abc, a, c) = (pos("ab"), pos("abc"), pos("a"), pos("c"));
    v.token_types[ab] = 5;
    v.token_types[abc] = 5;
    let tok = Tokenizer::new(v).unwrap();
    let mut out = Vec::new();
    tok.encode("abc", &mut out).unwrap();
    // a+b -> ab (unused) -> ab+c -> abc (unused): both split back.
    assert_eq!(out, vec![a as u32, tok.token_id("b").unwrap(), c as u32]);
}

#[test]
fn user_defined_pieces_match_whole_and_never_merge() {
    let mut v = tiny_vocab();
    v.tokens.push("<tool>".into());
    v.token_types.push(4);
    v.scores.push(0.0);
    v.tokens.push("c<".into());
    v.token_types.push(1);
    v.scores.push(5.0);
    let tok = Tokenizer::new(v).unwrap();
    let ud = tok.token_id("<tool>").unwrap();
    let mut out = Vec::new();
    tok.encode("abc<tool>c", &mut out).unwrap();
    assert_eq!(
        out,
        vec![tok.token_id("abc").unwrap(), ud, tok.token_id("c").unwrap()]
    );
    assert_eq!(tok.decode(&out), "abc<tool>c");
}

#[test]
fn no_byte_fallback_uses_unknown() {
    let mut v = tiny_vocab();
    let keep: Vec<usize> = (0..v.tokens.len())
        .filter(|&i| v.token_types[i] != 6)
        .collect();
    v.tokens = keep.iter().map(|&i| v.tokens[i].clone()).collect();
    v.scores = keep.iter().map(|&i| v.scores[i]).collect();
    v.token_types = keep.iter().map(|&i| v.token_types[i]).collect();
    let tok = Tokenizer::new(v.clone()).unwrap();
    assert!(!tok.has_byte_fallback());
    let mut out = Vec::new();
    tok.encode("aéb", &mut out).unwrap();
    assert_eq!(
        out,
        vec![tok.token_id("a").unwrap(), 0, tok.token_id("b").unwrap()]
    );
    assert_eq!(tok.decode(&out), "a ⁇ b");
    v.unk_id = None;
    assert!(matches!(Tokenizer::new(v), Err(Error::Model(_))));
}

#[test]
fn invalid_vocabularies_are_model_errors() {
    let is_model_err = |v: TokenizerVocab| matches!(Tokenizer::new(v), Err(Error::Model(_)));
    let mut v = tiny_vocab();
    v.scores.pop();
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.token_types.push(1);
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.bos_id = Some(100_000);
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.eot_id = Some(v.tokens.len() as u32);
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.token_types[5] = 1; // <0x02> no longer a byte token: 255 of 256
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.tokens[5] = "<0xZZ>".into();
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.token_types[4] = 9;
    assert!(is_model_err(v));
    let mut v = tiny_vocab();
    v.scores[260] = f32::NAN;
    assert!(is_model_err(v));
    assert!(is_model_err(TokenizerVocab::default()));
    let msg = match Tokenizer::new({
        let mut v = tiny_vocab();
        v.token_types[5] = 1;
        v
    }) {
        Err(e) => format!("{e}"),
        Ok(_) => unreachable!(),
    };
    assert!(msg.contains("<0x02>"), "{msg}");
}

/// The same model with pieces made UNUSED and USER_DEFINED, against sentencepiece.
#[test]
fn golden_variant_unused_and_user_defined() {
    let var = load_json("tokenizer_variant.json");
    let vocab = vocab_from_json(var.get("vocab"));
    assert!(vocab.token_types.contains(&4) && vocab.token_types.contains(&5));
    let tok = Tokenizer::new(vocab).unwrap();
    let cases = var.get("encode").arr();
    for c in cases {
        let text = c.get("text").str();
        let want = c.get("ids").u32s();
        assert_eq!(encode(&tok, text), want, "{text:?}");
        assert_eq!(
            tok.decode(&want),
            c.get("decoded").str(),
            "decode of {text:?}"
        );
        for &id in &want {
            assert_ne!(tok.token_type(id), Some(TokenType::Unused), "{text:?}");
        }
    }
}

/// The same model without byte pieces: runs of unknown characters become one `<unk>`.
#[test]
fn golden_no_byte_fallback() {
    let var = load_json("tokenizer_nobyte.json");
    let tok = Tokenizer::new(vocab_from_json(var.get("vocab"))).unwrap();
    assert!(!tok.has_byte_fallback());
    let cases = var.get("encode").arr();
    assert!(cases.len() >= 20);
    for c in cases {
        let text = c.get("text").str();
        let want = c.get("ids").u32s();
        assert_eq!(encode(&tok, text), want, "{text:?}");
        assert_eq!(
            tok.decode(&want),
            c.get("decoded").str(),
            "decode of {text:?}"
        );
    }
}

mod from_gguf {
    use super::*;
    use photon_runtime::gguf::{Gguf, GgufWriter, OwnedValue};

    /// A GGUF file holding the fixture vocabulary as docs/format.md (and training/export.py)
    /// write it; `skip` leaves a key out, `model` names the tokenizer model.
    fn gguf_bytes(model: &str, skip: &str) -> Vec<u8> {
        let v = vocab();
        let mut w = GgufWriter::new();
        let mut add = |k: &str, val: OwnedValue| {
            if k != skip {
                w.add(k, val).unwrap();
            }
        };
        add("tokenizer.ggml.model", OwnedValue::str(model));
        add("tokenizer.ggml.tokens", OwnedValue::str_array(&v.tokens));
        add("tokenizer.ggml.scores", OwnedValue::f32_array(&v.scores));
        add(
            "tokenizer.ggml.token_type",
            OwnedValue::i32_array(&v.token_types),
        );
        add(
            "tokenizer.ggml.bos_token_id",
            OwnedValue::U32(v.bos_id.unwrap()),
        );
        add(
            "tokenizer.ggml.eos_token_id",
            OwnedValue::U32(v.eos_id.unwrap()),
        );
        add(
            "tokenizer.ggml.unknown_token_id",
            OwnedValue::U32(v.unk_id.unwrap()),
        );
        add("tokenizer.ggml.padding_token_id", OwnedValue::I32(-1));
        add(
            "tokenizer.ggml.eot_token_id",
            OwnedValue::U32(v.eot_id.unwrap()),
        );
        add("tokenizer.ggml.add_bos_token", OwnedValue::Bool(true));
        add("tokenizer.ggml.add_eos_token", OwnedValue::Bool(false));
        add("tokenizer.ggml.add_space_prefix", OwnedValue::Bool(true));
        w.to_bytes().unwrap()
    }

    #[test]
    fn vocabulary_round_trips_through_gguf() {
        let bytes = gguf_bytes("llama", "");
        let g = Gguf::parse(&bytes).unwrap();
        let read = TokenizerVocab::from_gguf(&g).unwrap();
        let want = TokenizerVocab {
            pad_id: None,
            ..vocab()
        };
        assert_eq!(read, want);
        let tok = Tokenizer::from_gguf(&g).unwrap();
        let cases = load_json("tokenizer_cases.json");
        for c in cases.get("encode").arr() {
            assert_eq!(encode(&tok, c.get("text").str()), c.get("ids").u32s());
        }
    }

    #[test]
    fn defaults_and_errors() {
        // Optional keys take llama.cpp's defaults.
        let bytes = gguf_bytes("llama", "tokenizer.ggml.add_space_prefix");
        let v = TokenizerVocab::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap();
        assert!(v.add_space_prefix);
        let bytes = gguf_bytes("llama", "tokenizer.ggml.eot_token_id");
        assert_eq!(
            TokenizerVocab::from_gguf(&Gguf::parse(&bytes).unwrap())
                .unwrap()
                .eot_id,
            None
        );
        // Another tokenizer model is unsupported; a missing token list is a model error.
        let bytes = gguf_bytes("gpt2", "");
        let e = Tokenizer::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.model"] {
            let bytes = gguf_bytes("llama", key);
            let e = Tokenizer::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap_err();
            assert!(matches!(&e, Error::Model(m) if m.contains(key)), "{e}");
        }
        // Without token types there are no byte tokens: still valid (unknown token fallback).
        let bytes = gguf_bytes("llama", "tokenizer.ggml.token_type");
        let tok = Tokenizer::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap();
        assert!(!tok.has_byte_fallback());
        // A mistyped array names its key.
        let mut w = GgufWriter::new();
        w.add("tokenizer.ggml.model", OwnedValue::str("llama"))
            .unwrap();
        w.add("tokenizer.ggml.tokens", OwnedValue::i32_array(&[1, 2]))
            .unwrap();
        let bytes = w.to_bytes().unwrap();
        let e = Tokenizer::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap_err();
        assert!(
            matches!(&e, Error::Model(m) if m.contains("tokenizer.ggml.tokens")),
            "{e}"
        );
    }
}
