//! `load`: images from an OCI image layout or a `docker save` tarball.
