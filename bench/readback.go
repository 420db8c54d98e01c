package bench

// Figures read back after the run: the events stream's entry times and
// the run's messages by state.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

func messageStates(ctx context.Context, pool *pgxpool.Pool, appID string) (map[string]int64, error) {
	rows, err := pool.Query(ctx, `SELECT state, count(*) FROM message_states WHERE app_id = $1 GROUP BY state`, appID)
	if err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// streamFigures is what the events stream says about the window.
type streamFigures struct {
	inWindow int64             // entries whose id time falls in the window
	lat      []float64         // ms, mined -> entry, for events of blocks mined in the window
	first    map[int32]float64 // ms, mined -> first entry, by minedBlock.seq
}

// readStream reads the run's events stream back and times every entry by
// its id (Redis's clock, milliseconds).
func readStream(ctx context.Context, rdb rueidis.Client, key string, rcv *receiver, ws, we time.Time) (streamFigures, error) {
	out := streamFigures{first: map[int32]float64{}}
	start := "-"
	wsMs, weMs := ws.UnixMilli(), we.UnixMilli()
	for {
		entries, err := rdb.Do(ctx, rdb.B().Xrange().Key(key).Start(start).End("+").Count(5000).Build()).AsXRange()
		if err != nil {
			return out, fmt.Errorf("read %s: %w", key, err)
		}
		for _, e := range entries {
			ms, err := strconv.ParseInt(e.ID[:strings.IndexByte(e.ID, '-')], 10, 64)
			if err != nil {
				return out, fmt.Errorf("stream id %q: %w", e.ID, err)
			}
			if ms >= wsMs && ms < weMs {
				out.inWindow++
			}
			if e.FieldValues["type"] != hook.TypeLog {
				continue
			}
			if b, ok := rcv.minedAt(blockHashOf(e.FieldValues["id"])); ok && rcv.inWindow(b.at) {
				d := float64(ms - b.at.UnixMilli())
				out.lat = append(out.lat, d)
				if f, seen := out.first[b.seq]; !seen || d < f {
					out.first[b.seq] = d
				}
			}
		}
		if len(entries) < 5000 {
			return out, nil
		}
		start = "(" + entries[len(entries)-1].ID
	}
}

// blockHashOf takes the block hash out of an event id (chain:hash:index).
func blockHashOf(eventID string) string {
	i := strings.IndexByte(eventID, ':')
	j := strings.LastIndexByte(eventID, ':')
	if i < 0 || j <= i {
		return ""
	}
	return eventID[i+1 : j]
}
