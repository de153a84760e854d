package main

import (
	"fmt"
	"slices"
	"testing"
)

// fixture is a clean run: stock 3, users u1..u5 tried, u1..u3 won o1..o3,
// u4 and u5 were told SOLD_OUT.
func fixture() (Observed, DBState) {
	o := Observed{
		SaleID:   "s",
		Stock:    3,
		Tried:    map[string]bool{"u1": true, "u2": true, "u3": true, "u4": true, "u5": true},
		Acked:    map[string]string{"o1": "u1", "o2": "u2", "o3": "u3"},
		Rejected: map[string]bool{"u4": true, "u5": true},
	}
	d := DBState{Remaining: 0, Orders: []DBOrder{
		{ID: "o1", SaleID: "s", UserID: "u1"},
		{ID: "o2", SaleID: "s", UserID: "u2"},
		{ID: "o3", SaleID: "s", UserID: "u3"},
	}}
	return o, d
}

func kinds(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Observed, *DBState)
		want   []string // violation kinds, sorted
		ids    []string // ids the first violation of want[0] names
	}{
		{name: "clean", change: func(*Observed, *DBState) {}},
		{
			name: "oversell",
			change: func(o *Observed, d *DBState) {
				d.Orders = append(d.Orders, DBOrder{ID: "o4", SaleID: "s", UserID: "u4"})
				d.Remaining = -1
				o.Acked["o4"] = "u4"
				delete(o.Rejected, "u4")
			},
			want: []string{KindOrderCount, KindOversell},
		},
		{
			name: "stock not decremented",
			change: func(o *Observed, d *DBState) {
				d.Remaining = 1
			},
			want: []string{KindStock},
		},
		{
			name: "duplicate sale and user",
			change: func(o *Observed, d *DBState) {
				o.Stock = 4
				d.Orders = append(d.Orders, DBOrder{ID: "o4", SaleID: "s", UserID: "u1"})
				o.Acked["o4"] = "u1"
			},
			want: []string{KindDuplicate},
			ids:  []string{"o1", "o4"},
		},
		{
			name: "lost acknowledged order",
			change: func(o *Observed, d *DBState) {
				d.Orders = d.Orders[:2]
				d.Remaining = 1
			},
			want: []string{KindLost, KindOrderCount},
			ids:  []string{"o3"},
		},
		{
			name: "phantom order for a rejected user",
			change: func(o *Observed, d *DBState) {
				o.Stock = 4
				d.Orders = append(d.Orders, DBOrder{ID: "o9", SaleID: "s", UserID: "u5"})
			},
			want: []string{KindPhantom},
			ids:  []string{"o9"},
		},
		{
			name: "phantom order without attribution",
			change: func(o *Observed, d *DBState) {
				o.Stock = 4
				o.Rejected = nil
				d.Orders = append(d.Orders, DBOrder{ID: "o9", SaleID: "s", UserID: "u5"})
			},
			want: []string{KindPhantom},
			ids:  []string{"o9"},
		},
		{
			name: "unacknowledged order covered by an ambiguous request",
			change: func(o *Observed, d *DBState) {
				o.Stock = 4
				o.Rejected = map[string]bool{"u4": true}
				o.Ambiguous = 1
				d.Orders = append(d.Orders, DBOrder{ID: "o9", SaleID: "s", UserID: "u5"})
			},
		},
		{
			name: "order for a user who never tried",
			change: func(o *Observed, d *DBState) {
				o.Stock = 4
				d.Orders = append(d.Orders, DBOrder{ID: "o9", SaleID: "s", UserID: "stranger"})
			},
			want: []string{KindPhantom},
			ids:  []string{"o9"},
		},
		{
			name: "undersold although stock was left",
			change: func(o *Observed, d *DBState) {
				o.Stock = 5
				d.Remaining = 2
			},
			want: []string{KindOrderCount},
		},
		{
			name: "undersold because requests were shed",
			change: func(o *Observed, d *DBState) {
				o.Stock = 5
				d.Remaining = 2
				o.Throttled = 2
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, d := fixture()
			tt.change(&o, &d)
			vs := check(o, d)
			if got := kinds(vs); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("check() kinds = %v, want %v; violations: %v", got, tt.want, vs)
			}
			if tt.ids != nil {
				for _, v := range vs {
					if v.Kind == tt.want[0] {
						if fmt.Sprint(v.IDs) != fmt.Sprint(tt.ids) {
							t.Errorf("%s ids = %v, want %v", v.Kind, v.IDs, tt.ids)
						}
						break
					}
				}
			}
		})
	}
}
