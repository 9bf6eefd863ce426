#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sched.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(void){
  cpu_set_t s; CPU_ZERO(&s); CPU_SET(1,&s); sched_setaffinity(0,sizeof s,&s);
  size_t n=64<<20; char*b=aligned_alloc(4096,n); for(size_t i=0;i<n;i+=4096)b[i]=1;
  // memory-bound: random page order, write 64 B per page, read back
  size_t pages=n/4096; uint32_t*perm=malloc(pages*4); for(size_t i=0;i<pages;i++)perm[i]=i;
  uint64_t x=88172645463325252ull; for(size_t i=pages-1;i>0;i--){x^=x<<13;x^=x>>7;x^=x<<17;size_t j=x%(i+1);uint32_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  double t0=now(); uint64_t sum=0; long ops=0;
  while(now()-t0<20e6){ for(size_t k=0;k<pages;k++){uint64_t*p=(uint64_t*)(b+(size_t)perm[k]*4096); for(int w=0;w<8;w++)p[w]=k+w; sum+=p[3];} ops+=pages; }
  double t1=now(); printf("%.3f %lu\n",(t1-t0)/ops,(unsigned long)(sum&1)); return 0;}
