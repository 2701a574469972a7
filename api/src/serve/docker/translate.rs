//! Docker's container create body into berth's `ContainerConfig`: the one translation every
//! route that makes a container uses.
