//! photon-quantize: placeholder until the quantizer issue lands.
fn main() {
    eprintln!("photon-quantize: not implemented yet");
    std::process::exit(2);
}
