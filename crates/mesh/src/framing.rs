//! Messages over data channels: each message is cut into frames of at most [`MAX_FRAME`] bytes
//! (what every WebRTC stack delivers whole) and put back together on the other side, with the
//! receiver's memory bounded by the maximum message size (at most 1 MiB reserved before the
//! data arrives) and by a deadline for half-finished messages. The same code runs in the browser and natively; see ADR 0006.
//!
//! A frame is a kind byte and data:
//! - `0x00` + the whole message (at most `MAX_FRAME - 1` bytes);
//! - `0x01` + the message's length (u32, little-endian) + its first bytes: a message in parts;
//! - `0x02` + the next bytes of the message in parts.
//!
//! Data channels are reliable and ordered, and a sender sends one message's frames back to
//! back, so the parts of one message never interleave with another's.

use core::fmt;
use std::collections::VecDeque;

/// The largest frame sent or accepted, header included.
pub const MAX_FRAME: usize = 16 * 1024;
/// How long a message in parts may take to arrive in full.
pub const REASSEMBLY_TIMEOUT_MILLIS: u64 = 30_000;
/// Bytes a receiver reserves for a message in parts before its data arrives: enough that most
/// messages never reallocate, little enough that an announced 4 MiB costs a quarter of it.
pub const RESERVE_AHEAD: usize = 1024 * 1024;

const WHOLE: u8 = 0x00;
const FIRST: u8 = 0x01;
const NEXT: u8 = 0x02;
const FIRST_HEADER: usize = 1 + 4;

/// A frame's header: its kind byte, and the message's length for a first frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameHeader {
    bytes: [u8; FIRST_HEADER],
    len: usize,
}

impl FrameHeader {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The frames of `message` as headers and slices of it, so a transport copies each byte once
/// into its own buffer.
pub fn frame_parts(message: &[u8]) -> impl Iterator<Item = (FrameHeader, &[u8])> {
    let header = |kind: u8| FrameHeader {
        bytes: [kind, 0, 0, 0, 0],
        len: 1,
    };
    let (first, rest) = if message.len() < MAX_FRAME {
        ((header(WHOLE), message), &[][..])
    } else {
        let mut bytes = [FIRST, 0, 0, 0, 0];
        bytes[1..].copy_from_slice(&(message.len() as u32).to_le_bytes());
        let (first, rest) = message.split_at(MAX_FRAME - FIRST_HEADER);
        let first_header = FrameHeader {
            bytes,
            len: FIRST_HEADER,
        };
        ((first_header, first), rest)
    };
    core::iter::once(first).chain(
        rest.chunks(MAX_FRAME - 1)
            .map(move |part| (header(NEXT), part)),
    )
}

/// Cuts `message` into frames.
pub fn frames(message: &[u8]) -> Vec<Vec<u8>> {
    frame_parts(message)
        .map(|(header, data)| {
            let mut frame = Vec::with_capacity(header.as_bytes().len() + data.len());
            frame.extend_from_slice(header.as_bytes());
            frame.extend_from_slice(data);
            frame
        })
        .collect()
}

/// Why a frame is refused. Any of them means the peer is broken or hostile: the channel closes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    Empty,
    /// Larger than [`MAX_FRAME`].
    FrameTooLarge(usize),
    UnknownKind(u8),
    /// A message announced larger than the receiver's maximum.
    MessageTooLarge {
        size: usize,
        max: usize,
    },
    /// A first frame too short for its header, or announcing what fits in a whole frame.
    BadFirstFrame,
    /// A next frame with no message in parts under way.
    UnexpectedNext,
    /// A whole or first frame while a message in parts is under way.
    Interrupted,
    /// More bytes than the message announced.
    Overrun {
        size: usize,
    },
    /// A message in parts not finished within [`REASSEMBLY_TIMEOUT_MILLIS`].
    Stalled,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => f.write_str("an empty frame"),
            FrameError::FrameTooLarge(size) => {
                write!(f, "a frame of {size} bytes, above the limit of {MAX_FRAME}")
            }
            FrameError::UnknownKind(kind) => write!(f, "a frame of unknown kind {kind:#04x}"),
            FrameError::MessageTooLarge { size, max } => {
                write!(
                    f,
                    "a message of {size} bytes announced, above the limit of {max}"
                )
            }
            FrameError::BadFirstFrame => f.write_str(
                "a first frame without its length, or for a message that fits one frame",
            ),
            FrameError::UnexpectedNext => f.write_str("a continuation with no message under way"),
            FrameError::Interrupted => {
                f.write_str("a new message before the last one was complete")
            }
            FrameError::Overrun { size } => {
                write!(f, "more bytes than the {size} the message announced")
            }
            FrameError::Stalled => write!(
                f,
                "a message in parts not complete within {} s",
                REASSEMBLY_TIMEOUT_MILLIS / 1000
            ),
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Debug)]
struct Partial {
    size: usize,
    bytes: Vec<u8>,
    started_millis: u64,
}

/// Puts the frames of one channel back into messages.
#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    partial: Option<Partial>,
}

impl Reassembler {
    /// A reassembler taking messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Reassembler {
        Reassembler {
            max_message,
            partial: None,
        }
    }

    /// Takes the next frame; returns a message when one is complete.
    pub fn push(&mut self, frame: &[u8], now_millis: u64) -> Result<Option<Vec<u8>>, FrameError> {
        if frame.len() > MAX_FRAME {
            return Err(FrameError::FrameTooLarge(frame.len()));
        }
        let (&kind, data) = frame.split_first().ok_or(FrameError::Empty)?;
        match kind {
            WHOLE | FIRST if self.partial.is_some() => Err(FrameError::Interrupted),
            WHOLE => {
                self.check_size(data.len())?;
                Ok(Some(data.to_vec()))
            }
            FIRST => {
                if data.len() < 4 {
                    return Err(FrameError::BadFirstFrame);
                }
                let (size, data) = data.split_at(4);
                let size = u32::from_le_bytes(size.try_into().expect("4 bytes")) as usize;
                self.check_size(size)?;
                if size < MAX_FRAME {
                    return Err(FrameError::BadFirstFrame);
                }
                if data.len() > size {
                    return Err(FrameError::Overrun { size });
                }
                // At most RESERVE_AHEAD before the data comes; grown as frames arrive beyond.
                let mut bytes = Vec::with_capacity(size.min(RESERVE_AHEAD));
                bytes.extend_from_slice(data);
                self.partial = Some(Partial {
                    size,
                    bytes,
                    started_millis: now_millis,
                });
                Ok(None)
            }
            NEXT => {
                let partial = self.partial.as_mut().ok_or(FrameError::UnexpectedNext)?;
                if partial.bytes.len() + data.len() > partial.size {
                    return Err(FrameError::Overrun { size: partial.size });
                }
                partial.bytes.extend_from_slice(data);
                if partial.bytes.len() < partial.size {
                    return Ok(None);
                }
                Ok(self.partial.take().map(|partial| partial.bytes))
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// Fails if a message in parts has waited too long (call it on every tick).
    pub fn check_deadline(&self, now_millis: u64) -> Result<(), FrameError> {
        match &self.partial {
            Some(partial) if now_millis >= partial.started_millis + REASSEMBLY_TIMEOUT_MILLIS => {
                Err(FrameError::Stalled)
            }
            _ => Ok(()),
        }
    }

    /// Bytes held for a message in parts.
    pub fn buffered(&self) -> usize {
        self.partial
            .as_ref()
            .map_or(0, |partial| partial.bytes.capacity())
    }

    fn check_size(&self, size: usize) -> Result<(), FrameError> {
        if size > self.max_message {
            return Err(FrameError::MessageTooLarge {
                size,
                max: self.max_message,
            });
        }
        Ok(())
    }
}

/// The send side of one channel: frames wait here until the transport's own buffer has room,
/// so a fast sender neither drops data nor fills the transport without bound.
#[derive(Debug)]
pub struct SendQueue {
    frames: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    max_queued: usize,
}

/// The queue of a channel is full: its peer does not read fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub queued: usize,
    pub max: usize,
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes wait to be sent (the limit is {}): the peer does not keep up",
            self.queued, self.max
        )
    }
}

impl std::error::Error for QueueFull {}

impl SendQueue {
    /// A queue holding at most `max_queued` bytes of frames.
    pub fn new(max_queued: usize) -> SendQueue {
        SendQueue {
            frames: VecDeque::new(),
            queued_bytes: 0,
            max_queued,
        }
    }

    /// Queues `message`'s frames, unless that would take the queue past its limit.
    pub fn push(&mut self, message: &[u8]) -> Result<(), QueueFull> {
        let size = message.len() + message.len() / (MAX_FRAME - 1) + FIRST_HEADER;
        if self.queued_bytes + size > self.max_queued {
            return Err(QueueFull {
                queued: self.queued_bytes,
                max: self.max_queued,
            });
        }
        for frame in frames(message) {
            self.queued_bytes += frame.len();
            self.frames.push_back(frame);
        }
        Ok(())
    }

    /// Queues `message` as one channel message, unframed (see `TransportConfig::unframed`).
    pub fn push_unframed(&mut self, message: &[u8]) -> Result<(), QueueFull> {
        if self.queued_bytes + message.len() > self.max_queued {
            return Err(QueueFull {
                queued: self.queued_bytes,
                max: self.max_queued,
            });
        }
        self.queued_bytes += message.len();
        self.frames.push_back(message.to_vec());
        Ok(())
    }

    /// The next frame to hand the transport, if its buffer (`buffered` bytes now) is below
    /// `high_water`.
    pub fn next(&mut self, buffered: usize, high_water: usize) -> Option<Vec<u8>> {
        if buffered >= high_water {
            return None;
        }
        let frame = self.frames.pop_front()?;
        self.queued_bytes -= frame.len();
        Some(frame)
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 4 * 1024 * 1024;

    fn reassemble(frames: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut reassembler = Reassembler::new(MAX);
        let mut out = Vec::new();
        for frame in frames {
            assert!(frame.len() <= MAX_FRAME);
            out.extend(reassembler.push(frame, 0)?);
        }
        Ok(out)
    }

    #[test]
    fn messages_of_every_size_around_the_frame_boundaries_come_back_whole() {
        for size in [
            0,
            1,
            MAX_FRAME - 2,
            MAX_FRAME - 1,
            MAX_FRAME,
            MAX_FRAME + 1,
            2 * MAX_FRAME - 6,
            2 * MAX_FRAME - 5,
            2 * MAX_FRAME,
            1 << 20,
            MAX,
        ] {
            let message: Vec<u8> = (0..size).map(|n| (n * 7 + n / 251) as u8).collect();
            let frames = frames(&message);
            assert_eq!(reassemble(&frames), Ok(vec![message]), "size {size}");
        }
    }

    #[test]
    fn limits_and_malformed_frames_are_refused() {
        let big = frames(&vec![1; 100_000]);
        let mut small = Reassembler::new(50_000);
        assert_eq!(
            small.push(&big[0], 0),
            Err(FrameError::MessageTooLarge {
                size: 100_000,
                max: 50_000
            })
        );
        let mut r = Reassembler::new(MAX);
        assert_eq!(r.push(&[], 0), Err(FrameError::Empty));
        assert_eq!(r.push(&[9, 1], 0), Err(FrameError::UnknownKind(9)));
        assert_eq!(
            r.push(&vec![0; MAX_FRAME + 1], 0),
            Err(FrameError::FrameTooLarge(MAX_FRAME + 1))
        );
        assert_eq!(r.push(&[NEXT, 1], 0), Err(FrameError::UnexpectedNext));
        assert_eq!(r.push(&[FIRST, 1, 0], 0), Err(FrameError::BadFirstFrame));
        assert_eq!(
            r.push(&[FIRST, 10, 0, 0, 0, 1], 0),
            Err(FrameError::BadFirstFrame)
        );
        // A message in parts, then another message before it ends.
        assert_eq!(r.push(&big[0], 0), Ok(None));
        assert_eq!(r.push(&[WHOLE, 1], 0), Err(FrameError::Interrupted));
        // More than announced.
        let mut r = Reassembler::new(MAX);
        let mut frames = frames(&vec![2; MAX_FRAME + 10]);
        frames[1].push(0);
        assert_eq!(r.push(&frames[0], 0), Ok(None));
        assert_eq!(
            r.push(&frames[1], 0),
            Err(FrameError::Overrun {
                size: MAX_FRAME + 10
            })
        );
    }

    #[test]
    fn a_message_in_parts_that_stalls_is_refused_and_memory_follows_the_data() {
        let frames = frames(&vec![3; MAX]);
        let mut r = Reassembler::new(MAX);
        assert_eq!(r.push(&frames[0], 1_000), Ok(None));
        // An announced 4 MiB costs what is reserved ahead until it is sent.
        assert!(r.buffered() <= RESERVE_AHEAD, "{}", r.buffered());
        assert_eq!(
            r.check_deadline(1_000 + REASSEMBLY_TIMEOUT_MILLIS - 1),
            Ok(())
        );
        assert_eq!(
            r.check_deadline(1_000 + REASSEMBLY_TIMEOUT_MILLIS),
            Err(FrameError::Stalled)
        );
    }

    #[test]
    fn the_send_queue_waits_for_room_and_refuses_beyond_its_limit() {
        let mut queue = SendQueue::new(100_000);
        queue.push(&vec![1; 40_000]).expect("room");
        assert_eq!(
            queue.push(&vec![1; 70_000]),
            Err(QueueFull {
                queued: queue.queued_bytes(),
                max: 100_000
            })
        );
        // The transport's buffer is full: nothing moves.
        assert_eq!(queue.next(64 * 1024, 64 * 1024), None);
        let mut sent = Vec::new();
        while let Some(frame) = queue.next(0, 64 * 1024) {
            sent.push(frame);
        }
        assert_eq!(reassemble(&sent), Ok(vec![vec![1; 40_000]]));
        assert!(queue.is_empty());
        assert_eq!(queue.queued_bytes(), 0);
    }
}
