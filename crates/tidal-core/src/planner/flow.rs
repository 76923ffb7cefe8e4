//! Min-cost flow by successive shortest paths (Dijkstra on reduced costs).
//!
//! The planner's assignment problems (replicas to nodes, leaders to
//! members) are flows whose edge costs are 0 (keep what is there) or 1 (a
//! change). A flow may start from edges already saturated at cost 0 (what
//! the layout keeps); since no cost is negative, such a flow costs the least
//! for its value, and augmenting along shortest paths keeps it so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Debug)]
struct Edge {
    to: usize,
    /// Capacity left.
    cap: i64,
    cost: i64,
}

/// A flow network: vertices are `0..n`, edges are added with
/// [`Flow::edge`] and pushed with [`Flow::push`] or [`Flow::augment`].
#[derive(Clone, Debug, Default)]
pub struct Flow {
    edges: Vec<Edge>,
    out: Vec<Vec<usize>>,
    potential: Vec<i64>,
}

impl Flow {
    pub fn new(n: usize) -> Self {
        Self { edges: Vec::new(), out: vec![Vec::new(); n], potential: vec![0; n] }
    }

    pub fn add_vertex(&mut self) -> usize {
        self.out.push(Vec::new());
        self.potential.push(0);
        self.out.len() - 1
    }

    /// An edge `from → to`; its id, for [`Flow::flow_on`] and [`Flow::push`].
    pub fn edge(&mut self, from: usize, to: usize, cap: i64, cost: i64) -> usize {
        debug_assert!(cost >= 0, "costs are never negative");
        let id = self.edges.len();
        self.edges.push(Edge { to, cap, cost });
        self.edges.push(Edge { to: from, cap: 0, cost: -cost });
        self.out[from].push(id);
        self.out[to].push(id + 1);
        id
    }

    /// Flow on edge `id`.
    pub fn flow_on(&self, id: usize) -> i64 {
        self.edges[id ^ 1].cap
    }

    /// Send `amount` more along edge `id` (of cost 0, when building the
    /// starting flow); false when it has no room.
    pub fn push(&mut self, id: usize, amount: i64) -> bool {
        if self.edges[id].cap < amount {
            return false;
        }
        self.edges[id].cap -= amount;
        self.edges[id ^ 1].cap += amount;
        true
    }

    /// Push up to `want` units from `s` to `t`, each along a cheapest path;
    /// the units pushed and their cost. Each round finds the cheapest
    /// distance by Dijkstra on reduced costs, then pushes every unit it can
    /// along paths of that distance at once (a blocking flow on the edges
    /// of reduced cost 0), so there are as many rounds as distinct path
    /// costs rather than one per unit.
    pub fn augment(&mut self, s: usize, t: usize, want: i64) -> (i64, i64) {
        let n = self.out.len();
        let (mut pushed, mut cost) = (0, 0);
        let mut dist = vec![i64::MAX; n];
        let mut level = vec![u32::MAX; n];
        let mut next = vec![0usize; n];
        while pushed < want {
            dist.fill(i64::MAX);
            dist[s] = 0;
            let mut heap = BinaryHeap::from([Reverse((0i64, s))]);
            while let Some(Reverse((d, v))) = heap.pop() {
                if d > dist[v] {
                    continue;
                }
                for &e in &self.out[v] {
                    let Edge { to, cap, cost } = self.edges[e];
                    if cap <= 0 {
                        continue;
                    }
                    let nd = d + cost + self.potential[v] - self.potential[to];
                    if nd < dist[to] {
                        dist[to] = nd;
                        heap.push(Reverse((nd, to)));
                    }
                }
            }
            if dist[t] == i64::MAX {
                break;
            }
            // Reduced costs stay non-negative on every edge with room,
            // including those out of vertices this search did not reach.
            let far = dist[t];
            for (p, d) in self.potential.iter_mut().zip(&dist) {
                *p += (*d).min(far);
            }
            // Blocking flows on the edges of reduced cost 0.
            loop {
                level.fill(u32::MAX);
                level[s] = 0;
                let mut queue = std::collections::VecDeque::from([s]);
                while let Some(v) = queue.pop_front() {
                    for &e in &self.out[v] {
                        let to = self.edges[e].to;
                        if level[to] == u32::MAX && self.admissible(v, e) {
                            level[to] = level[v] + 1;
                            queue.push_back(to);
                        }
                    }
                }
                if level[t] == u32::MAX {
                    break;
                }
                next.fill(0);
                let before = pushed;
                while pushed < want {
                    let (f, c) = self.dfs(s, t, want - pushed, &level, &mut next);
                    if f == 0 {
                        break;
                    }
                    pushed += f;
                    cost += c;
                }
                if pushed == before || pushed == want {
                    break;
                }
            }
        }
        (pushed, cost)
    }

    fn admissible(&self, v: usize, e: usize) -> bool {
        let Edge { to, cap, cost } = self.edges[e];
        cap > 0 && cost + self.potential[v] - self.potential[to] == 0
    }

    /// One path of the level graph from `v` to `t`, carrying at most
    /// `limit`: the units sent and their cost.
    fn dfs(&mut self, v: usize, t: usize, limit: i64, level: &[u32], next: &mut [usize]) -> (i64, i64) {
        if v == t {
            return (limit, 0);
        }
        while next[v] < self.out[v].len() {
            let e = self.out[v][next[v]];
            let to = self.edges[e].to;
            if level[to] == level[v] + 1 && self.admissible(v, e) {
                let (f, c) = self.dfs(to, t, limit.min(self.edges[e].cap), level, next);
                if f > 0 {
                    self.edges[e].cap -= f;
                    self.edges[e ^ 1].cap += f;
                    return (f, c + f * self.edges[e].cost);
                }
            }
            next[v] += 1;
        }
        (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheaper_of_two_paths_is_taken_first() {
        // s → a → t costs 1, s → b → t costs 0; each carries one unit.
        let mut f = Flow::new(4);
        let (s, a, b, t) = (0, 1, 2, 3);
        let sa = f.edge(s, a, 1, 0);
        let sb = f.edge(s, b, 1, 0);
        f.edge(a, t, 1, 1);
        f.edge(b, t, 1, 0);
        assert_eq!(f.augment(s, t, 1), (1, 0));
        assert_eq!((f.flow_on(sa), f.flow_on(sb)), (0, 1));
        assert_eq!(f.augment(s, t, 5), (1, 1));
    }

    #[test]
    fn a_unit_is_rerouted_when_that_is_cheaper() {
        // Two sources x, y and two sinks p, q: x may use p (0) or q (1), y
        // only p (0). Start with x on p; pushing y moves x to q.
        let mut f = Flow::new(6);
        let (s, x, y, p, q, t) = (0, 1, 2, 3, 4, 5);
        let sx = f.edge(s, x, 1, 0);
        f.edge(s, y, 1, 0);
        let xp = f.edge(x, p, 1, 0);
        let xq = f.edge(x, q, 1, 1);
        let yp = f.edge(y, p, 1, 0);
        let pt = f.edge(p, t, 1, 0);
        f.edge(q, t, 1, 0);
        assert!(f.push(sx, 1) && f.push(xp, 1) && f.push(pt, 1));
        assert_eq!(f.augment(s, t, 1), (1, 1));
        assert_eq!((f.flow_on(xp), f.flow_on(xq), f.flow_on(yp)), (0, 1, 1));
    }
}
