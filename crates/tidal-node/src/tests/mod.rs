//! Nodes in this process on real sockets: three driven through the router,
//! and one whose HTTP API is sent bodies of every size. They live in the
//! library's test build rather than in test binaries of their own, which
//! would compile the node again.

mod common;
mod http_bodies;
mod in_process;
