//! `import`: a root filesystem tarball becomes a one-layer image, with `--change` instructions
//! applied to its config.
