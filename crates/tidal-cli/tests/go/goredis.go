// go-redis as an application uses it, against two nodes of one tidal
// cluster: `go run goredis.go HOST:PORT HOST:PORT`. Prints one JSON line
// per step; the Rust test compares them. Built in GOPATH mode against
// Debian's golang-gopkg-redis.v5-dev (go-redis v5), so no module proxy is
// needed.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	redis "gopkg.in/redis.v5"
)

func out(step string, value interface{}) {
	line, err := json.Marshal(map[string]interface{}{"step": step, "value": value})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

// vals turns a transaction's or a pipeline's commands into their replies,
// or their errors' texts.
func vals(cmds []redis.Cmder) []interface{} {
	res := make([]interface{}, 0, len(cmds))
	for _, c := range cmds {
		if c.Err() != nil {
			res = append(res, "error: "+c.Err().Error())
			continue
		}
		switch c := c.(type) {
		case *redis.StatusCmd:
			res = append(res, c.Val())
		case *redis.IntCmd:
			res = append(res, c.Val())
		case *redis.StringCmd:
			res = append(res, c.Val())
		case *redis.BoolCmd:
			res = append(res, c.Val())
		case *redis.FloatCmd:
			res = append(res, c.Val())
		case *redis.StringSliceCmd:
			res = append(res, c.Val())
		case *redis.StringStringMapCmd:
			res = append(res, c.Val())
		default:
			res = append(res, fmt.Sprintf("%T", c))
		}
	}
	return res
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	r := redis.NewClient(&redis.Options{Addr: os.Args[1]})
	other := redis.NewClient(&redis.Options{Addr: os.Args[2]})
	defer r.Close()
	defer other.Close()
	const key = "{cart}items"

	// TxPipelined: MULTI ... EXEC, each command's reply in its own type.
	cmds, err := r.TxPipelined(func(pipe *redis.Pipeline) error {
		pipe.Set(key, 3, 0)
		pipe.Incr(key)
		pipe.IncrByFloat(key, 0.5)
		pipe.Get(key)
		return nil
	})
	check(err)
	out("tx-pipelined", vals(cmds))

	// A transaction queued with a wrong argument count is refused whole.
	_, err = r.TxPipelined(func(pipe *redis.Pipeline) error {
		pipe.Set(key, 9, 0)
		pipe.Process(redis.NewCmd("GET"))
		return nil
	})
	if err == nil {
		out("execabort", "applied")
	} else {
		out("execabort", strings.Fields(err.Error())[0])
	}
	after, err := r.Get(key).Result()
	check(err)
	out("after-abort", after)

	// Watch, a write by another client, then EXEC: TxFailedErr, nothing
	// applied.
	err = r.Watch(func(tx *redis.Tx) error {
		n, err := tx.Get(key).Float64()
		if err != nil {
			return err
		}
		if err := other.Set(key, 100, 0).Err(); err != nil {
			return err
		}
		_, err = tx.Pipelined(func(pipe *redis.Pipeline) error {
			pipe.Set(key, n+1, 0)
			return nil
		})
		return err
	}, key)
	if err == redis.TxFailedErr {
		out("watch-conflict", "TxFailedErr")
	} else {
		out("watch-conflict", fmt.Sprint(err))
	}
	after, err = r.Get(key).Result()
	check(err)
	out("after-conflict", after)

	// The optimistic-lock loop as go-redis's documentation writes it:
	// no other writer, so the first EXEC applies.
	err = r.Watch(func(tx *redis.Tx) error {
		n, err := tx.Get(key).Int64()
		if err != nil {
			return err
		}
		_, err = tx.Pipelined(func(pipe *redis.Pipeline) error {
			pipe.Set(key, n*2, 0)
			return nil
		})
		return err
	}, key)
	check(err)
	after, err = r.Get(key).Result()
	check(err)
	out("watch-applied", after)

	// Pipelined: plain pipelining, no transaction.
	cmds, err = r.Pipelined(func(pipe *redis.Pipeline) error {
		pipe.HMSet("h", map[string]string{"a": "1", "b": "2"})
		pipe.HIncrBy("h", "a", 10)
		pipe.HGetAll("h")
		pipe.RPush("l", "x", "y", "z")
		pipe.LPop("l")
		pipe.LRange("l", 0, -1)
		pipe.SAdd("s", "q", "p", "q")
		pipe.SIsMember("s", "p")
		pipe.ZAdd("z", redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 3, Member: "c"})
		pipe.ZIncrBy("z", 1.5, "a")
		return nil
	})
	check(err)
	out("pipelined", vals(cmds))

	zs, err := r.ZRangeWithScores("z", 0, -1).Result()
	check(err)
	pairs := make([]interface{}, 0, len(zs))
	for _, z := range zs {
		pairs = append(pairs, []interface{}{z.Member, z.Score})
	}
	out("zrange-withscores", pairs)
	members, err := r.SMembers("s").Result()
	check(err)
	sort.Strings(members)
	out("smembers", members)

	// The wrong type, in Redis's words.
	out("wrongtype", fmt.Sprint(r.LPush("h", "x").Err()))

	// A blocked pop answered by a push through another node.
	go func() {
		time.Sleep(200 * time.Millisecond)
		other.LPush("jobs", "job-1")
	}()
	popped, err := r.BLPop(5*time.Second, "jobs").Result()
	check(err)
	out("blpop", popped)
	_, err = r.BLPop(time.Second, "nothing-here").Result()
	out("blpop-timeout", fmt.Sprint(err))
}
