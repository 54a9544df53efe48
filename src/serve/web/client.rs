//! The web process's end of the socket pair: requests go out with an id, a
//! reader task hands each reply (and the descriptor with it) to its caller,
//! so a slow lab check never holds up a login.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use crate::serve::protocol::{self, Envelope, Received, Reply, Request};

type Pending = Mutex<HashMap<u64, oneshot::Sender<(Reply, Option<OwnedFd>)>>>;

pub struct HelperClient {
    socket: Arc<AsyncFd<OwnedFd>>,
    next: AtomicU64,
    pending: Arc<Pending>,
}

impl HelperClient {
    /// Starts the reader task. When the helper goes away the web process has
    /// nothing left to serve, and exits.
    pub fn start(socket: OwnedFd) -> io::Result<HelperClient> {
        let flags = nix::fcntl::fcntl(&socket, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&socket, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // SAFETY: an OwnedFd stays open and the same until the AsyncFd drops it.
        let socket = Arc::new(unsafe { AsyncFd::register(socket) }.map_err(std::io::Error::from)?);
        let pending: Arc<Pending> = Arc::default();
        let (reader_socket, reader_pending) = (Arc::clone(&socket), Arc::clone(&pending));
        tokio::spawn(async move {
            let mut buffer = vec![0u8; protocol::MAX_MESSAGE];
            loop {
                let Ok(mut guard) = reader_socket.readable().await else { break };
                match protocol::receive::<Envelope<Reply>>(reader_socket.get_ref().as_fd(), &mut buffer) {
                    Ok(Received::WouldBlock) => guard.clear_ready(),
                    Ok(Received::Message(envelope, fd)) => {
                        if let Some(waiter) = reader_pending.lock().unwrap().remove(&envelope.id) {
                            let _ = waiter.send((envelope.body, fd));
                        }
                    }
                    Ok(Received::Closed) => break,
                    Err(error) => eprintln!("serve: web: from the helper: {error}"),
                }
            }
            eprintln!("serve: web: the helper has gone; exiting");
            std::process::exit(125);
        });
        Ok(HelperClient { socket, next: AtomicU64::new(1), pending })
    }

    pub async fn call(&self, request: Request) -> io::Result<(Reply, Option<OwnedFd>)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let envelope = Envelope { id, body: request };
        loop {
            let mut guard = self.socket.writable().await?;
            match guard.try_io(|socket| protocol::send(socket.get_ref().as_fd(), &envelope, None)) {
                Ok(result) => {
                    if let Err(error) = result {
                        self.pending.lock().unwrap().remove(&id);
                        return Err(error);
                    }
                    break;
                }
                Err(_would_block) => continue,
            }
        }
        rx.await.map_err(|_| io::Error::other("the helper did not answer"))
    }

    /// A call whose reply carries no descriptor.
    pub async fn ask(&self, request: Request) -> Reply {
        match self.call(request).await {
            Ok((reply, _)) => reply,
            Err(error) => Reply::Failed(error.to_string()),
        }
    }
}
