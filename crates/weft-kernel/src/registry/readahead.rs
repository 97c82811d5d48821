//! Reading the log ahead of a projection build: while the writer folds one
//! stretch of the log into a projection passed every activity (the feed), a
//! thread of its own reads the next stretch from a snapshot and parses its
//! activities, so that reading and parsing the log (a third of the feed's
//! build) overlap the folds instead of adding to them. A projection passed
//! only some types reads its log itself: its build is mostly that reading,
//! and handing it to another thread only added the handoffs (measured).
//!
//! It is only ever ahead of the writer, never instead of it: a stretch read
//! ahead is taken only when it holds exactly what the writer's own read
//! would (the same first position, and every record up to the writer's end
//! or its limit; see [`Stretch::take`]), and not at all once the log has
//! been pruned since it was asked for. Anything else the writer reads
//! itself, as without it. It is not a cache: one stretch is asked for at a
//! time and forgotten once taken.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use weft_runtime::Parsed;
use weft_store::{ActivityRecord, Store};

/// What to make of a stretch's activities besides reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parse {
    /// Their fields (a 0.1.0 or 0.3.0 projection passed every activity).
    Fields,
    /// Their fields and 0.2.0 records (a 0.2.0 projection passed every
    /// activity).
    V0_2,
}

/// A stretch asked for: at most `limit` records at `from..=until`, read
/// while the log was pruned `epoch` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ask {
    from: u64,
    until: u64,
    limit: usize,
    epoch: u64,
    parse: Parse,
}

/// A stretch read from a snapshot whose log ends at `last`.
struct Stretch {
    ask: Ask,
    last: u64,
    records: Vec<(u64, ActivityRecord)>,
    parsed: Parsed,
}

/// Records read ahead, with their activities parsed.
pub(super) type Read = (Vec<(u64, ActivityRecord)>, Parsed);

impl Stretch {
    /// What the writer's own read of at most `limit` records at
    /// `from..=until` would give, if this stretch holds all of it.
    fn take(self, from: u64, until: u64, limit: usize) -> Option<Read> {
        if self.ask.from != from {
            return None;
        }
        // The positions this stretch says all there is about: up to its
        // last record when it is full, else up to the end it was asked
        // for, as far as its snapshot's log went.
        let covered = if self.records.len() == self.ask.limit {
            self.records.last().map_or(0, |(p, _)| *p)
        } else {
            self.ask.until.min(self.last)
        };
        let wanted = self
            .records
            .iter()
            .take(limit)
            .take_while(|(p, _)| *p <= until)
            .count();
        if wanted < limit && covered < until {
            return None;
        }
        let Self {
            mut records,
            mut parsed,
            ..
        } = self;
        records.truncate(wanted);
        parsed.truncate(wanted);
        Some((records, parsed))
    }
}

/// The reading thread and the channels to it.
struct Reader {
    asks: Option<mpsc::Sender<Ask>>,
    stretches: mpsc::Receiver<Option<Stretch>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the stretch it reads.
        self.asks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Default)]
struct State {
    reader: Option<Reader>,
    /// The stretch asked for and not taken yet.
    asked: Option<Ask>,
    /// Times the log was pruned (a stretch read before is not taken).
    epoch: u64,
}

/// Reads the log ahead of the build the writer is stepping.
pub(super) struct ReadAhead {
    store: Arc<Store>,
    state: Mutex<State>,
}

impl ReadAhead {
    pub(super) fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            state: Mutex::new(State::default()),
        }
    }

    /// Starts reading at most `limit` records at `from..=until`, unless a
    /// stretch is being read already.
    pub(super) fn ask(&self, from: u64, until: u64, limit: usize, parse: Parse) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.asked.is_some() || from > until {
            return;
        }
        let ask = Ask {
            from,
            until,
            limit,
            epoch: state.epoch,
            parse,
        };
        if state.reader.is_none() {
            state.reader = self.spawn();
        }
        let sent = state
            .reader
            .as_ref()
            .and_then(|r| r.asks.as_ref())
            .is_some_and(|asks| asks.send(ask).is_ok());
        if sent {
            state.asked = Some(ask);
        } else {
            state.reader = None;
        }
    }

    /// The records the writer would read at `from..=until` (at most
    /// `limit`) and their parsed activities, if the stretch read ahead
    /// holds them; waits for a stretch still being read.
    pub(super) fn take(&self, from: u64, until: u64, limit: usize) -> Option<Read> {
        let mut state = self.state.lock().ok()?;
        let ask = state.asked.take()?;
        // One stretch is asked for at a time: this is its answer.
        let stretch = state.reader.as_ref()?.stretches.recv().ok().flatten()?;
        if ask.epoch != state.epoch {
            return None;
        }
        stretch.take(from, until, limit)
    }

    /// The log was pruned: nothing read before is taken.
    pub(super) fn pruned(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.epoch += 1;
        }
    }

    fn spawn(&self) -> Option<Reader> {
        let (asks, asked) = mpsc::channel::<Ask>();
        let (read, stretches) = mpsc::channel();
        let store = self.store.clone();
        let thread = std::thread::Builder::new()
            .name("weft-readahead".into())
            .spawn(move || {
                for ask in asked {
                    let stretch = read_stretch(&store, ask);
                    if let Err(e) = &stretch {
                        tracing::debug!(error = %e, "reading the log ahead of a build failed");
                    }
                    if read.send(stretch.ok()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "no thread to read builds' log ahead"))
            .ok()?;
        Some(Reader {
            asks: Some(asks),
            stretches,
            thread: Some(thread),
        })
    }
}

fn read_stretch(store: &Store, ask: Ask) -> Result<Stretch, weft_store::StoreError> {
    let reader = store.read()?;
    let last = reader.last_position()?;
    let records = reader.records(ask.from, ask.until, ask.limit)?;
    let items = || {
        records
            .iter()
            .map(|(_, r)| (r.id.as_str(), r.json.as_str(), r.backfilled))
    };
    let parsed = Parsed::of(items(), ask.parse == Parse::V0_2);
    Ok(Stretch {
        ask,
        last,
        records,
        parsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(position: u64) -> (u64, ActivityRecord) {
        (
            position,
            ActivityRecord {
                id: format!("id-{position}"),
                json: format!(r#"{{"type":"Note","seq":{position}}}"#),
                actor: "a".into(),
                seq: position,
                public: true,
                backfilled: false,
            },
        )
    }

    fn stretch(from: u64, until: u64, limit: usize, last: u64, positions: &[u64]) -> Stretch {
        Stretch {
            ask: Ask {
                from,
                until,
                limit,
                epoch: 0,
                parse: Parse::Fields,
            },
            last,
            records: positions.iter().copied().map(record).collect(),
            parsed: Parsed::default(),
        }
    }

    fn positions(read: Option<Read>) -> Option<Vec<u64>> {
        read.map(|(records, _)| records.into_iter().map(|(p, _)| p).collect())
    }

    #[test]
    fn a_stretch_is_taken_only_when_it_holds_all_the_writer_would_read() {
        // Full: everything up to its last record is known.
        let full = || stretch(1, 100, 4, 100, &[1, 2, 3, 5]);
        assert_eq!(positions(full().take(1, 100, 4)), Some(vec![1, 2, 3, 5]));
        assert_eq!(positions(full().take(1, 200, 2)), Some(vec![1, 2]));
        assert_eq!(positions(full().take(1, 3, 4)), Some(vec![1, 2, 3]));
        // Not from where the writer is.
        assert_eq!(positions(full().take(2, 100, 4)), None);
        // Short of its limit: it knows up to where it was asked to read,
        // as far as its snapshot's log went.
        let short = || stretch(1, 10, 4, 10, &[1, 2]);
        assert_eq!(positions(short().take(1, 10, 4)), Some(vec![1, 2]));
        assert_eq!(positions(short().take(1, 8, 4)), Some(vec![1, 2]));
        // The log went on past its end since: the writer reads itself.
        assert_eq!(positions(short().take(1, 12, 4)), None);
        // Its snapshot ended before what was asked (appends not yet
        // committed when it was read).
        let behind = stretch(1, 10, 4, 6, &[1, 2]);
        assert_eq!(positions(behind.take(1, 10, 4)), None);
        let empty = stretch(7, 10, 4, 10, &[]);
        assert_eq!(positions(empty.take(7, 10, 4)), Some(vec![]));
    }

    /// Appends activities `from..=to` to `store`'s log, committed.
    fn append(store: &Store, from: u64, to: u64) -> anyhow::Result<()> {
        let txn = store.begin_write()?;
        {
            let mut batch = weft_store::Batch::open(&txn, store.recent_ids())?;
            for n in from..=to {
                batch.append_remote(n, &record(n).1)?;
            }
            batch.flush_ids()?;
        }
        txn.commit()?;
        store.recent_ids().settle(true);
        Ok(())
    }

    #[test]
    fn the_next_stretch_is_read_and_parsed_from_the_store() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("weft.redb"))?);
        append(&store, 1, 10)?;
        let ahead = ReadAhead::new(store.clone());
        // Nothing asked: the writer reads itself.
        assert!(ahead.take(1, 10, 4).is_none());

        ahead.ask(1, 10, 4, Parse::V0_2);
        let (records, parsed) = ahead.take(1, 10, 4).expect("read ahead");
        let at: Vec<u64> = records.iter().map(|(p, _)| *p).collect();
        assert_eq!(at, [1, 2, 3, 4]);
        assert_eq!(records[2].1, record(3).1);
        // Its activities parsed there are this run's: taken by the run.
        let mut run = weft_runtime::Activities::new();
        for (_, r) in &records {
            run.push(&r.id, &r.json, r.backfilled);
        }
        assert!(run.with_parsed(parsed));
        assert!(run.kinds().all(|kind| kind == "Note"));

        // Asked for one place, needed at another: read by the writer.
        ahead.ask(5, 10, 4, Parse::Fields);
        assert!(ahead.take(6, 10, 4).is_none());
        // Appended since it was asked: the stretch does not know of 11.
        ahead.ask(9, 10, 4, Parse::Fields);
        append(&store, 11, 11)?;
        assert!(ahead.take(9, 11, 4).is_none());
        // Read before a prune: never taken.
        ahead.ask(9, 11, 4, Parse::Fields);
        ahead.pruned();
        assert!(ahead.take(9, 11, 4).is_none());
        ahead.ask(9, 11, 4, Parse::Fields);
        let (records, parsed) = ahead.take(9, 11, 4).expect("read ahead");
        assert_eq!(records.len(), 3);
        assert_eq!(parsed.len(), 3);
        Ok(())
    }

    #[test]
    fn parsed_activities_are_cut_with_their_records() {
        let mut s = stretch(1, 100, 4, 100, &[1, 2, 3, 4]);
        s.ask.parse = Parse::V0_2;
        s.parsed = Parsed::of(
            s.records
                .iter()
                .map(|(_, r)| (r.id.as_str(), r.json.as_str(), r.backfilled)),
            true,
        );
        let (records, parsed) = s.take(1, 100, 3).expect("taken");
        assert_eq!(records.len(), 3);
        assert_eq!(parsed.len(), 3);
    }
}
