//! The bounded in-memory todo store. One mutex: every operation is O(log n) and short, and the
//! app is a test target, not a database.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Todo {
    pub id: u64,
    pub text: String,
    pub completed: bool,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    Full { max: usize },
    NotFound,
}

pub struct Store {
    max: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    next_id: u64,
    todos: BTreeMap<u64, Todo>,
    completed: usize,
}

/// Counts for the gauges, read at scrape time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub active: usize,
    pub completed: usize,
}

pub struct Update {
    pub text: Option<String>,
    pub completed: Option<bool>,
}

impl Store {
    pub fn new(max: usize) -> Store {
        Store {
            max,
            inner: Mutex::new(Inner {
                next_id: 1,
                todos: BTreeMap::new(),
                completed: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated (no partial writes),
        // so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create(&self, text: String, now: String) -> Result<Todo, StoreError> {
        let mut s = self.lock();
        if s.todos.len() >= self.max {
            return Err(StoreError::Full { max: self.max });
        }
        let id = s.next_id;
        s.next_id += 1;
        let todo = Todo {
            id,
            text,
            completed: false,
            created_at: now.clone(),
            updated_at: now,
        };
        s.todos.insert(id, todo.clone());
        Ok(todo)
    }

    pub fn list(&self, completed: Option<bool>, offset: usize, limit: usize) -> (Vec<Todo>, usize) {
        let s = self.lock();
        let matching = s
            .todos
            .values()
            .filter(|t| completed.is_none_or(|c| t.completed == c));
        let total = match completed {
            None => s.todos.len(),
            Some(true) => s.completed,
            Some(false) => s.todos.len() - s.completed,
        };
        (matching.skip(offset).take(limit).cloned().collect(), total)
    }

    pub fn get(&self, id: u64) -> Result<Todo, StoreError> {
        self.lock()
            .todos
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    pub fn update(&self, id: u64, u: Update, now: String) -> Result<Todo, StoreError> {
        let mut s = self.lock();
        let s = &mut *s;
        let t = s.todos.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(text) = u.text {
            t.text = text;
        }
        if let Some(c) = u.completed {
            if c != t.completed {
                if c {
                    s.completed += 1;
                } else {
                    s.completed -= 1;
                }
            }
            t.completed = c;
        }
        t.updated_at = now;
        Ok(t.clone())
    }

    pub fn delete(&self, id: u64) -> Result<Todo, StoreError> {
        let mut s = self.lock();
        let t = s.todos.remove(&id).ok_or(StoreError::NotFound)?;
        if t.completed {
            s.completed -= 1;
        }
        Ok(t)
    }

    pub fn counts(&self) -> Counts {
        let s = self.lock();
        Counts {
            active: s.todos.len() - s.completed,
            completed: s.completed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_counted() {
        let s = Store::new(2);
        let a = s.create("a".into(), "t".into()).unwrap();
        s.create("b".into(), "t".into()).unwrap();
        assert_eq!(
            s.create("c".into(), "t".into()),
            Err(StoreError::Full { max: 2 })
        );
        s.update(
            a.id,
            Update {
                text: None,
                completed: Some(true),
            },
            "t".into(),
        )
        .unwrap();
        assert_eq!(
            s.counts(),
            Counts {
                active: 1,
                completed: 1
            }
        );
        s.delete(a.id).unwrap();
        assert_eq!(
            s.counts(),
            Counts {
                active: 1,
                completed: 0
            }
        );
        assert_eq!(s.list(Some(false), 0, 10).0.len(), 1);
        s.create("c".into(), "t".into()).unwrap();
    }
}
