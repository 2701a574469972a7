//! Generated container names, in Docker's `adjective_surname` shape (surnames of scientists and
//! engineers). Our own short lists: the shape matters to users, not Docker's exact words.

use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "curious", "daring", "eager",
    "elated", "epic", "fair", "fervent", "fond", "gentle", "glad", "happy", "hardy", "jolly", "keen", "kind",
    "lucid", "lucky", "merry", "mighty", "modest", "nifty", "noble", "patient", "peaceful", "plucky",
    "proud", "quick", "quiet", "rapid", "relaxed", "serene", "sharp", "sleepy", "snappy", "steady", "sunny",
    "swift", "tender", "tidy", "upbeat", "vibrant", "vivid", "warm", "wise", "witty", "zealous",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "bardeen",
    "bohr",
    "boole",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goodall",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "liskov",
    "lovelace",
    "maxwell",
    "meitner",
    "mirzakhani",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "perlman",
    "planck",
    "ramanujan",
    "ritchie",
    "sammet",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wing",
    "wozniak",
    "yalow",
];

/// A random `adjective_surname`; with `suffix` > 0 a number is appended (after collisions).
pub fn random_name(suffix: u32) -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).expect("list is not empty");
    let surname = SURNAMES.choose(&mut rng).expect("list is not empty");
    if suffix == 0 {
        format!("{adjective}_{surname}")
    } else {
        format!("{adjective}_{surname}{suffix}")
    }
}
