//! Ctrl-C: stops the reply being generated; at an idle prompt, a second press within
//! [`QUIT_WINDOW`] at the same prompt quits with status 130. The handler runs on its own thread (the `ctrlc` crate),
//! so it can print and exit while the main thread is blocked reading input.
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Set by Ctrl-C while a reply is being generated; the generation loop polls it once a step.
pub static STOP: AtomicBool = AtomicBool::new(false);

static STATE: AtomicU8 = AtomicU8::new(State::Starting as u8);

/// Counts the prompts shown: two presses quit only at the same prompt (input in between
/// disarms).
static PROMPTS: AtomicU64 = AtomicU64::new(0);

/// Two presses at an idle prompt at most this far apart quit.
pub const QUIT_WINDOW: Duration = Duration::from_millis(1000);

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Loading: Ctrl-C quits at once.
    Starting = 0,
    /// Waiting at the prompt.
    Idle = 1,
    /// Reading a message, generating a reply.
    Busy = 2,
}

pub fn set_state(s: State) {
    if s == State::Busy {
        STOP.store(false, Ordering::SeqCst);
    }
    if s == State::Idle {
        PROMPTS.fetch_add(1, Ordering::SeqCst);
    }
    STATE.store(s as u8, Ordering::SeqCst);
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Installs the handler. `prompt` is printed again after the "press again" notice.
pub fn install(prompt: &'static str) -> Result<(), String> {
    let mut armed: Option<(Instant, u64)> = None;
    ctrlc::set_handler(move || {
        let state = STATE.load(Ordering::SeqCst);
        if state == State::Busy as u8 {
            STOP.store(true, Ordering::SeqCst);
            armed = None;
        } else if state == State::Idle as u8 {
            let now = Instant::now();
            let at = PROMPTS.load(Ordering::SeqCst);
            if armed.is_some_and(|(t, p)| p == at && now.duration_since(t) <= QUIT_WINDOW) {
                quit();
            }
            armed = Some((now, at));
            eprint!("\n(Ctrl-C again to quit, or Ctrl-D)\n{prompt}");
        } else {
            quit();
        }
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))
}

fn quit() -> ! {
    let _ = std::io::stdout().flush();
    eprintln!();
    std::process::exit(130);
}
