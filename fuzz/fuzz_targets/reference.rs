//! Image references (`berth_engine::Reference::parse`), as every pull, push, tag, run and
//! build names an image. Besides never panicking: the normalised form and the short form
//! Docker shows parse back to the same reference (but where the short form is ambiguous in
//! Docker too, see below).

#![no_main]

use berth_engine::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(reference) = Reference::parse(text) else { return };
    let full = reference.to_string();
    assert_eq!(Reference::parse(&full).as_ref(), Ok(&reference), "{text:?} normalised to {full:?}");
    let familiar = reference.familiar();
    // The short form drops `docker.io/`, so `docker.io/a.b/c` is shown as `a.b/c`, which reads
    // back as the registry `a.b`: Docker's FamiliarString does the same (Docker Hub has no
    // namespace that looks like a host name).
    let first = reference.path().split('/').next().unwrap_or_default();
    let ambiguous = reference.domain() == "docker.io"
        && reference.path().contains('/')
        && (first.contains(['.', ':']) || first == "localhost");
    if !ambiguous {
        assert_eq!(Reference::parse(&familiar).as_ref(), Ok(&reference), "{text:?} shown as {familiar:?}");
    }
    let untagged = reference.without_digest();
    assert_eq!(Reference::parse(&untagged.to_string()).as_ref(), Ok(&untagged));
    if let Some(tag) = reference.tag() {
        assert_eq!(reference.with_tag(tag).map(|r| r.to_string()), Ok(untagged.to_string()));
    }
});
