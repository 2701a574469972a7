//! `save`: images to a tar that is an OCI image layout and a `docker save` archive at once.
