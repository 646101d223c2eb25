//! Frame bookkeeping shared by the streaming post-processors (deltas, sliding CMN).

use super::mfcc::check_dim;
use super::{FeatureError, FeatureMatrix};

/// Moves every row of `from` to the end of `to` (same dimension); returns how many.
pub(crate) fn move_rows(
    from: &mut FeatureMatrix,
    to: &mut FeatureMatrix,
) -> Result<usize, FeatureError> {
    check_dim(to, from.dim())?;
    let n = from.num_frames();
    to.extend(from);
    from.clear();
    Ok(n)
}

/// Input frames kept from global frame `history_start` on, the count received, the next frame
/// to emit, the end-of-input flag and the finished output rows.
#[derive(Debug, Clone)]
pub(crate) struct FrameQueue {
    history: FeatureMatrix,
    history_start: usize,
    pub received: usize,
    pub next_out: usize,
    pub finished: bool,
    pub ready: FeatureMatrix,
}

impl FrameQueue {
    pub fn new(in_dim: usize, out_dim: usize, history_frames: usize) -> Self {
        Self {
            history: FeatureMatrix::with_capacity(in_dim, history_frames),
            history_start: 0,
            received: 0,
            next_out: 0,
            finished: false,
            ready: FeatureMatrix::new(out_dim),
        }
    }

    pub fn reset(&mut self) {
        self.history.clear();
        self.history_start = 0;
        self.received = 0;
        self.next_out = 0;
        self.finished = false;
        self.ready.clear();
    }

    /// Appends input frames; refused after end of input.
    pub fn push(&mut self, frames: &FeatureMatrix) -> Result<(), FeatureError> {
        check_dim(frames, self.history.dim())?;
        if self.finished {
            return Err(FeatureError::InvalidInput(
                "frames after input_finished: call reset() to start a new utterance".into(),
            ));
        }
        self.history.extend(frames);
        self.received += frames.num_frames();
        Ok(())
    }

    /// Input frame `t` (global index; must still be kept).
    pub fn input(&self, t: usize) -> &[f32] {
        self.history.row(t - self.history_start)
    }

    /// Forgets input frames before `keep_from`, in batches of at least `batch` frames (the
    /// memmove is amortised) or all at once after end of input.
    pub fn forget_before(&mut self, keep_from: usize, batch: usize) {
        let droppable = keep_from.saturating_sub(self.history_start);
        if droppable >= batch || (droppable > 0 && self.finished) {
            self.history.drain_front(droppable);
            self.history_start += droppable;
        }
    }
}
