//! A process's stdio as the daemon hands it to a client: `attach` to a container's first process
//! or an `exec`'d process.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Which stream output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
    /// A pseudo-terminal's output (stdout and stderr together).
    Tty,
}

/// One item of a session's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutput {
    Data {
        stream: OutputStream,
        data: Vec<u8>,
    },
    /// Output was dropped because this client read too slowly (the process never blocks on a
    /// slow client).
    Dropped {
        bytes: u64,
    },
}

/// What a client can send to a session. Cheap to clone; all clones feed the same process.
#[derive(Debug, Clone)]
pub struct SessionInput {
    pub(crate) tx: mpsc::Sender<InputMessage>,
}

#[derive(Debug)]
pub(crate) enum InputMessage {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize { cols: u16, rows: u16 },
    Kill,
}

impl SessionInput {
    /// Writes to the process's stdin (ignored when the process was not started with stdin open).
    pub async fn write(&self, data: Vec<u8>) -> Result<()> {
        self.send(InputMessage::Stdin(data)).await
    }

    /// Closes the process's stdin: it reads end of file.
    pub async fn close_stdin(&self) -> Result<()> {
        self.send(InputMessage::CloseStdin).await
    }

    /// Sets the terminal size (ignored without a tty).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        self.send(InputMessage::Resize { cols, rows }).await
    }

    /// Kills an exec'd process (SIGKILL); nothing for an attach session.
    pub async fn kill(&self) -> Result<()> {
        self.send(InputMessage::Kill).await
    }

    async fn send(&self, message: InputMessage) -> Result<()> {
        self.tx.send(message).await.map_err(|_| Error::InvalidInput("the process has ended".to_string()))
    }
}

/// A running process's stdio. Take the fields apart to drive them from separate tasks.
pub struct ProcessSession {
    /// The container ID (attach) or the exec ID.
    pub id: String,
    /// Whether the process has a pseudo-terminal (output is then [`OutputStream::Tty`]).
    pub tty: bool,
    /// Output in order; ends after the process exits and its output is drained, or when the
    /// session is detached.
    pub output: mpsc::Receiver<SessionOutput>,
    /// Stdin, close, resize.
    pub input: SessionInput,
    /// The exit code (128+signal when killed by one); an error if it cannot be known (the
    /// monitor went away).
    pub exit: Pin<Box<dyn Future<Output = Result<i32>> + Send>>,
}

impl std::fmt::Debug for ProcessSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSession").field("id", &self.id).field("tty", &self.tty).finish_non_exhaustive()
    }
}
